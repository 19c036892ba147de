/**
 * Freeing dropped Buffers on time. V8 frees their memory only when it collects, and lets 64 MiB
 * of them pile up per thread before it does so on its own, which alone is most of a 96-128 MiB
 * process: the long-running processes (the sidecar, the WAL daemon, the compression worker) run a
 * collector that collects once the Buffers grew (startBufferCollector), and streams that decode
 * a backup scavenge as they go (youngCollector). gc() is taken without starting Node with --expose-gc: the flag is set
 * at run time and the function taken from a fresh context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Node flags of the long-running processes (the sidecar, the WAL daemon). A 1 MiB semi-space
 * instead of 16 MiB: the young generation is collected more often, and an idle sidecar is 9-11
 * MiB smaller, with no measurable cost to WAL or backup speed.
 */
export const LEAN_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * glibc's malloc told to map every block of 256 KiB or more on its own, so that freeing it unmaps
 * it. By default glibc raises that threshold to the largest block freed so far (up to 32 MiB);
 * after a backup's first 5 MiB part is freed, its 1-5 MiB Buffers come from the heap, which keeps
 * them when they are freed. Measured after a full collection during a Backup: 111 MiB resident
 * with it, 130 without.
 *
 * And the mimalloc that each napi-rs module links (snappy, lz4-napi, @node-rs/crc32) told to
 * commit its segments and arenas as they are used, not whole when reserved: a snappy backup of
 * 1160 MB peaked at 148 MiB with it against 156-161 without, a snappy WAL daemon at maxParallel 8
 * at 92 against 95, at the same CPU (docs/measurements/backup-memory.md, docs/wal-archiving.md).
 */
export const LEAN_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(256 * 1024),
  MIMALLOC_ARENA_EAGER_COMMIT: '0',
  MIMALLOC_EAGER_COMMIT: '0',
};

/**
 * The WAL daemon's: LEAN_MALLOC_ENV, and glibc's malloc arenas capped at 2. Each thread that
 * allocates (the compression worker, libuv's 4 pool threads deflating gzip and doing file I/O) would
 * otherwise take an arena of its own, which keeps what it freed: with zstd at maxParallel 8, 2-6 MiB
 * less at the peak, at no measurable CPU (docs/wal-archiving.md).
 */
export const DAEMON_MALLOC_ENV: Readonly<Record<string, string>> = { ...LEAN_MALLOC_ENV, MALLOC_ARENA_MAX: '2' };

/**
 * LEAN_NODE_FLAGS' effect for a process started without them (a CLI command run by hand or by a
 * CronJob). --max-semi-space-size is read once, when V8 sets up its heap, so setting it later does
 * nothing; the growth factor is read each time the young generation would grow, so at 1 it stays
 * at its initial 1 MiB semi-spaces. Call it before the process has allocated much: V8 does not give
 * back young-generation space it has grown (a logical backup of 1 GB: 32 MiB of it otherwise).
 */
export function capYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

type Gc = (options?: { type: 'major' | 'minor'; execution?: 'sync' }) => void;

let gc: Gc | undefined;

export function exposedGc(): Gc {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  return gc;
}

/**
 * A counter of streamed bytes that runs a young-generation collection every `bytes`. A stream's
 * chunks die young, yet V8 lets 64 MiB of dead Buffers pile up before it collects on its own; a
 * scavenge frees them in about a millisecond, where a full collection of a large heap takes tens.
 */
export function youngCollector(bytes: number): (n: number) => void {
  let since = 0;
  return (n) => {
    since += n;
    if (since < bytes) return;
    since = 0;
    exposedGc()({ type: 'minor' });
  };
}

const MiB = 1024 * 1024;
/** How far the Buffers grow past the fewest seen since the last collection before the collector runs another. */
export const REGROWTH = 8 * MiB;
export const COLLECT_INTERVAL_MS = 200;
const CHECK_INTERVAL_MS = 50;

/** What the collector remembers between checks. */
export interface CollectorState {
  /** When the last full collection ran (ms). */
  lastFull: number;
  /** The fewest Buffers seen since then: what it could not free. */
  floor: number;
}

/**
 * Whether a check at `now` runs a full collection, and updates the state for it. It counts
 * Buffers, not the resident set: a transfer keeps the resident set over any threshold whether or
 * not anything is left to free, and collecting regardless costs tens of milliseconds each time.
 * `external` (Buffers and the native memory addons report, which includes arrayBuffers): lz4-napi's
 * frames are Buffers of its own allocator, outside arrayBuffers, yet freed only by a collection.
 */
export function collectionDue(state: CollectorState, usage: { rss: number; external: number }, now: number, threshold: number, regrowth = REGROWTH): boolean {
  state.floor = Math.min(state.floor, usage.external);
  if (usage.rss < threshold || now - state.lastFull < COLLECT_INTERVAL_MS || usage.external < state.floor + regrowth) return false;
  state.lastFull = now;
  state.floor = usage.external;
  return true;
}

/** Counts `transfer` as running for a collector that checks only while one runs; settles as `transfer` does. */
export type TransferTracker = <T>(transfer: Promise<T>) => Promise<T>;

/** The tracker of work that no collector watches. */
export const untracked: TransferTracker = (transfer) => transfer;

export interface BufferCollector {
  /** Counts `transfer` as running until it settles (`transfers: 'tracked'`). */
  during: TransferTracker;
  stop(): void;
}

/**
 * Runs a full collection whenever collectionDue says so for a resident set of `threshold` bytes
 * or more and Buffers grown by `regrowth`; stop() ends it. Dead Buffers are then freed by the collection itself
 * (--no-concurrent-array-buffer-sweeping), not later on a background thread that on a busy
 * machine waits for a core while the memory stays allocated (in isolation: 40 MiB still there
 * right after 4 of 6 collections).
 *
 * `transfers: 'tracked'`: the checks run only while a transfer passed to during() runs, and once
 * after the last ends. Buffers grow only under transfers, and a check every 50 ms is most of what an
 * idle WAL daemon costs (0.20 of its 0.25 CPU s per 30 s idle, in every pod and every test server;
 * docs/wal-archiving.md).
 */
export function startBufferCollector(threshold: number, regrowth = REGROWTH, transfers: 'always' | 'tracked' = 'always'): BufferCollector {
  const gc = exposedGc();
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  const state: CollectorState = { lastFull: 0, floor: 0 };
  let running = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = () => {
    if (collectionDue(state, process.memoryUsage(), Date.now(), threshold, regrowth)) gc();
    if (transfers === 'tracked' && running === 0) clear();
  };
  const clear = () => {
    clearInterval(timer);
    timer = undefined;
  };
  const start = () => {
    if (timer || stopped) return;
    timer = setInterval(check, CHECK_INTERVAL_MS);
    timer.unref();
  };
  if (transfers === 'always') start();
  return {
    during: (transfer) => {
      running++;
      start();
      return transfer.finally(() => running--);
    },
    stop: () => {
      stopped = true;
      clear();
    },
  };
}
