/**
 * A process's memory budget: how much its container may hold, and the sizes of what it keeps in
 * flight derived from that, so that Kubernetes does not OOM-kill it at its limit (the sidecar:
 * 192Mi by default for an instance, 320Mi for a restore job, lifecycle-patch.ts).
 *
 * Budget: PGARK_MEMORY_BUDGET (a Kubernetes quantity, e.g. 128Mi), else two thirds of the
 * container's cgroup limit (cgroup v2 memory.max, v1 memory.limit_in_bytes), else, for the
 * sidecar, none: nothing is capped; a backup taken by a command (`pgark backup`, `pgark apply`,
 * barman-cloud-backup, the agent's scheduled backups) plans for BACKUP_DEFAULT_BUDGET, measured
 * to cost it no speed on the loopback store (docs/backups.md "Memory"). Two thirds, because the measured peaks sit within a few MiB of the budget (122-124 MiB
 * under 128Mi) and a hard limit is no place for a few MiB of margin: at the default 192Mi limit
 * the sidecar plans for 128Mi and stays about 70 MiB clear of an OOM kill.
 *
 * Formula (docs/cnpg-plugin.md "Memory"), with BASE the measured resident set of an idle sidecar
 * (Node.js, gRPC, the configuration code and one storage SDK: 87 MiB with S3 under
 * SIDECAR_NODE_OPTIONS, 96 MiB allowed) and WAL_PUSH 6 MiB (what one WAL push or prefetch in
 * flight costs: it streams in 256 KiB chunks, wal/archive.ts, yet 8 pushes at once measured 50 MiB
 * over the idle sidecar with bench/plugin, chunks in several stages and the socket's queue):
 *
 *   spare                = budget - BASE
 *   WAL segments at once = clamp(floor(spare / WAL_PUSH), 1, wal.maxParallel)
 *   upload slots         = floor(spare / 2 / PART), PART = 5 MiB (S3's smallest part)
 *   data.tar parts       = clamp(floor(slots / 3), 1, jobs) written at once (backup/parts.ts; the
 *                          others wait their turn): each upload needs a part in flight and up to
 *                          two being filled (storage/types.ts)
 *   backup parts at once = clamp(floor(slots / data.tar parts) - 2, 1, max(2, jobs)) per tar
 *                          (with one data.tar part, as before the split: slots - 2).
 *                          The other half of spare is for the compression:
 *                          jobs + 2 block buffers of 1 MiB reused for the whole tar (split
 *                          among data.tar's parts, 2 more per extra part), its
 *                          output in 64 KiB pieces, and 1 MiB read buffers handed back once
 *                          copied (by the compressor, or for an uncompressed tar by the S3
 *                          part reader), 4 kept and a few in the tar stream's queues
 *                          (codec/parallel.ts, io/lent.ts); a Backup of
 *                          a 1160 MB database under 128Mi peaked at 123 MiB: bench/plugin.ts)
 *   collector            = above budget - HEADROOM (32 MiB) of resident set, a full garbage
 *                          collection once the Buffers (process.memoryUsage().external)
 *                          grew REGROWTH (8 MiB) past the fewest seen since the last one, at
 *                          most every 200 ms
 *
 * The collector is what makes the formula hold: V8 frees the memory of dropped Buffers only when
 * it collects, and it lets up to 64 MiB of them pile up first, which alone is half the limit.
 * It counts Buffers, not the resident set: during a backup the resident set stays over the
 * threshold whether or not anything is left to free (the idle sidecar is within 8 MiB of it, and
 * glibc keeps some freed memory), and collecting every 200 ms regardless cost tens of
 * milliseconds each time, most of a loaded machine's CPU share. Dead Buffers are freed by the
 * collection itself (--no-concurrent-array-buffer-sweeping, set at start), not later on a
 * background thread that may wait for a core. Young-generation collections
 * do not help with a backup's read and part Buffers, which live long enough to be promoted before
 * they die (measured: scavenges every 20 ms left the peak within 2 MiB); lz4's frames, which die
 * young, are scavenged by their compressor (codec/parallel.ts, lz4BlockCodec).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import { LEAN_MALLOC_ENV, LEAN_NODE_FLAGS, startBufferCollector, type BufferCollector, type TransferTracker } from '../util/gc.js';
import { setting } from '../util/options.js';

const MiB = 1024 * 1024;
export const BASE = 96 * MiB;
export const WAL_PUSH = 6 * MiB;
export const PART = 5 * MiB;
export const HEADROOM = 32 * MiB;

/** Node flags the sidecar runs with (the operator sets them as NODE_OPTIONS in the container it injects; util/gc.ts says why). */
export const SIDECAR_NODE_OPTIONS = LEAN_NODE_FLAGS.join(' ');

/** The environment the operator gives the sidecar: SIDECAR_NODE_OPTIONS and glibc's malloc setting (util/gc.ts). */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { NODE_OPTIONS: SIDECAR_NODE_OPTIONS, ...LEAN_MALLOC_ENV };

const UNITS: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: MiB, Gi: 1024 * MiB };

/** A Kubernetes memory quantity (134217728, 128Mi, 0.5Gi, 128M) in bytes. */
export function parseQuantity(text: string, where: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(|k|K|M|G|Ki|Mi|Gi)\s*$/.exec(text);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2]]) : NaN;
  if (!(bytes > 0)) throw new UserError(`${where} "${text}" is not a memory size`, 'a Kubernetes quantity such as 128Mi, 1Gi or 134217728 (bytes)');
  return bytes;
}

/** The container's limit from its cgroup; undefined when there is none ("max", or v1's huge sentinel). */
export function cgroupLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    const n = Number(text);
    // cgroup v1 reports "no limit" as a number near 2^63 rounded to the page size.
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  }
  return undefined;
}

export interface MemoryBudget {
  bytes: number;
  from: 'PGARK_MEMORY_BUDGET' | 'cgroup' | 'default';
}

/** What a backup process without PGARK_MEMORY_BUDGET or a container limit plans for: issue 18's bar for a backup. */
export const BACKUP_DEFAULT_BUDGET = 160 * MiB;

export function memoryBudget(env: NodeJS.ProcessEnv = process.env, limit: () => number | undefined = cgroupLimit): MemoryBudget | undefined {
  const text = setting('memoryBudget', env);
  if (text !== undefined) return { bytes: parseQuantity(text, 'PGARK_MEMORY_BUDGET'), from: 'PGARK_MEMORY_BUDGET' };
  const bytes = limit();
  return bytes === undefined ? undefined : { bytes: Math.floor((bytes * 2) / 3), from: 'cgroup' };
}

const clamp = (n: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, n));

/** The sizes the formula gives under a budget; without one, the configured values unchanged. */
export class MemoryPlan {
  private collector?: BufferCollector;

  constructor(readonly budget: MemoryBudget | undefined) {}

  private get spare(): number {
    return Math.max(0, this.budget!.bytes - BASE);
  }

  /** WAL segments archived (or prefetched) at once, for a configured wal.maxParallel. */
  walParallel(maxParallel: number): number {
    if (!this.budget) return maxParallel;
    return clamp(Math.floor(this.spare / WAL_PUSH), 1, maxParallel);
  }

  /** Multipart part size and parts uploaded at once for a backup with `jobs`; undefined fields keep the backup's defaults. */
  backupUpload(jobs: number): { partSize?: number; queueSize?: number; maxParts?: number } {
    if (!this.budget) return {};
    const slots = Math.floor(this.spare / 2 / PART);
    const maxParts = clamp(Math.floor(slots / 3), 1, jobs);
    // run.ts divides queueSize among the parts of data.tar written at once.
    return { partSize: PART, maxParts, queueSize: maxParts * clamp(Math.floor(slots / maxParts) - 2, 1, Math.max(2, jobs)) };
  }

  /**
   * Starts the collector (nothing without a budget); stop() ends it. `transfers: 'tracked'` (the
   * sidecar, which lives idle between calls): it checks only while a transfer passed to
   * trackTransfer runs.
   */
  startCollector(transfers: 'always' | 'tracked' = 'always'): { stop(): void } {
    if (!this.budget) return { stop: () => undefined };
    // A stopped collector's during() only counts: trackTransfer may keep passing work to it.
    this.collector = startBufferCollector(this.budget.bytes - HEADROOM, undefined, transfers);
    return this.collector;
  }

  /** Counts `transfer` for the running collector's checks (as it is, without one). */
  readonly trackTransfer: TransferTracker = (transfer) => (this.collector ? this.collector.during(transfer) : transfer);

  /** What the plan applies, for a log line (undefined without a budget). */
  summary(): { budgetMiB: number; from: MemoryBudget['from']; walParallelMax: number; backupUpload: ReturnType<MemoryPlan['backupUpload']> } | undefined {
    if (!this.budget) return undefined;
    return { budgetMiB: Math.round(this.budget.bytes / MiB), from: this.budget.from, walParallelMax: this.walParallel(Infinity), backupUpload: this.backupUpload(2) };
  }
}

/** The plan of a process that takes a backup: its budget, else BACKUP_DEFAULT_BUDGET. */
export function backupMemory(env: NodeJS.ProcessEnv = process.env, limit: () => number | undefined = cgroupLimit): MemoryPlan {
  return new MemoryPlan(memoryBudget(env, limit) ?? { bytes: BACKUP_DEFAULT_BUDGET, from: 'default' });
}
