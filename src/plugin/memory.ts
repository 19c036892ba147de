/**
 * The sidecar's memory budget: how much its container may hold, and the sizes of what it keeps in
 * flight derived from that, so that Kubernetes does not OOM-kill it at its limit (128Mi by
 * default, lifecycle-patch.ts).
 *
 * Budget: PGARK_MEMORY_BUDGET (a Kubernetes quantity, e.g. 128Mi), else the container's cgroup
 * limit (cgroup v2 memory.max, v1 memory.limit_in_bytes), else none: nothing is capped.
 *
 * Formula (docs/cnpg-plugin.md "Memory"), with BASE the measured resident set of an idle sidecar
 * (Node.js, gRPC, the configuration code and one storage SDK: 87 MiB with S3 under
 * SIDECAR_NODE_OPTIONS, 96 MiB allowed) and SEGMENT 16 MiB (one WAL segment buffer):
 *
 *   spare                = budget - BASE
 *   WAL segments at once = clamp(floor(spare / SEGMENT) - 1, 1, wal.maxParallel)
 *                          (each holds one segment buffer, and the reading worker one more)
 *   backup parts at once = clamp(floor(spare / 2 / PART) - 2, 1, max(2, jobs)), PART = 5 MiB
 *                          (S3's smallest part; two more are being assembled (storage/types.ts); the other half of spare is for the compression
 *                          blocks, jobs x 2 x 1 MiB, and stream buffers)
 *   collector            = above budget - HEADROOM (32 MiB) of resident set: a young-generation
 *                          collection every 50 ms, and a full one at most every 200 ms, only
 *                          once the resident set grew REGROWTH (8 MiB) past what the last full
 *                          one left
 *
 * The collector is what makes the formula hold: V8 frees the memory of dropped Buffers only when
 * it collects, and it lets up to 64 MiB of them pile up first, which alone is half the limit.
 * Most of a backup's Buffers (file reads, compression blocks, upload parts) die young, and a
 * scavenge of the 1 MiB semi-space frees them in about half a millisecond; a full collection
 * costs tens of milliseconds, and repeating it while the resident set stays above the threshold
 * anyway (it does for a whole backup: the idle sidecar is within 8 MiB of it) took most of a
 * loaded machine's CPU share away from the backup itself.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';

const MiB = 1024 * 1024;
export const BASE = 96 * MiB;
export const SEGMENT = 16 * MiB;
export const PART = 5 * MiB;
export const HEADROOM = 32 * MiB;
export const REGROWTH = 8 * MiB;
export const COLLECT_INTERVAL_MS = 200;
const CHECK_INTERVAL_MS = 50;

/** What the collector remembers between checks. */
export interface CollectorState {
  /** When the last full collection ran (ms). */
  lastFull: number;
  /** The resident set the check after it saw: what the full collection could not free. */
  floor: number;
  /** The next check measures the floor. */
  measureFloor: boolean;
}

/** The collection a check at `now` with resident set `rss` runs, and updates the state for it. */
export function collectionDue(state: CollectorState, rss: number, now: number, threshold: number): 'none' | 'minor' | 'major' {
  if (state.measureFloor) {
    // Measured one check later: V8 frees a collection's dead Buffers on a background thread just after it.
    state.measureFloor = false;
    state.floor = rss;
  }
  if (rss < threshold) return 'none';
  if (now - state.lastFull >= COLLECT_INTERVAL_MS && rss >= state.floor + REGROWTH) {
    state.lastFull = now;
    state.measureFloor = true;
    return 'major';
  }
  return 'minor';
}

/**
 * Node flags the sidecar runs with (the operator sets them as NODE_OPTIONS in the container it
 * injects). A 1 MiB semi-space instead of 16 MiB: the young generation is collected more often,
 * and the idle sidecar is 9-11 MiB smaller, with no measurable cost to WAL or backup speed.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=1';

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
  from: 'PGARK_MEMORY_BUDGET' | 'cgroup';
}

export function memoryBudget(env: NodeJS.ProcessEnv = process.env, limit: () => number | undefined = cgroupLimit): MemoryBudget | undefined {
  const text = setting('memoryBudget', env);
  if (text !== undefined) return { bytes: parseQuantity(text, 'PGARK_MEMORY_BUDGET'), from: 'PGARK_MEMORY_BUDGET' };
  const bytes = limit();
  return bytes === undefined ? undefined : { bytes, from: 'cgroup' };
}

const clamp = (n: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, n));

/** The sizes the formula gives under a budget; without one, the configured values unchanged. */
export class SidecarMemory {
  constructor(readonly budget: MemoryBudget | undefined) {}

  private get spare(): number {
    return Math.max(0, this.budget!.bytes - BASE);
  }

  /** WAL segments archived (or prefetched) at once, for a configured wal.maxParallel. */
  walParallel(maxParallel: number): number {
    if (!this.budget) return maxParallel;
    return clamp(Math.floor(this.spare / SEGMENT) - 1, 1, maxParallel);
  }

  /** Multipart part size and parts uploaded at once for a backup with `jobs`; undefined fields keep the backup's defaults. */
  backupUpload(jobs: number): { partSize?: number; queueSize?: number } {
    if (!this.budget) return {};
    return { partSize: PART, queueSize: clamp(Math.floor(this.spare / 2 / PART) - 2, 1, Math.max(2, jobs)) };
  }

  /** Starts the collector (nothing without a budget); stop() ends it. */
  startCollector(): { stop(): void } {
    if (!this.budget) return { stop: () => undefined };
    const gc = exposedGc();
    const threshold = this.budget.bytes - HEADROOM;
    const state: CollectorState = { lastFull: 0, floor: 0, measureFloor: false };
    const timer = setInterval(() => {
      const due = collectionDue(state, process.memoryUsage.rss(), Date.now(), threshold);
      if (due !== 'none') gc({ type: due });
    }, CHECK_INTERVAL_MS);
    timer.unref();
    logger().info({ budgetMiB: Math.round(this.budget.bytes / MiB), from: this.budget.from, walParallelMax: this.walParallel(Infinity), backupUpload: this.backupUpload(2) }, 'sidecar memory budget');
    return { stop: () => clearInterval(timer) };
  }
}

/** V8's gc(), which Node exposes only under --expose-gc: the flag is set now, and the function taken from a fresh context. */
function exposedGc(): (opts: { type: 'minor' | 'major' }) => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as (opts: { type: 'minor' | 'major' }) => void;
}
