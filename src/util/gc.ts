/**
 * V8's gc() without starting Node with --expose-gc: the flag is set at run time and the function
 * taken from a fresh context. Streaming code needs it because V8 frees the memory of dropped
 * Buffers only when it collects, and lets 64 MiB of them pile up per thread before it does so on
 * its own: a young-generation collection after each file streamed frees them for a few
 * milliseconds' work.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type: 'major' | 'minor'; execution?: 'sync' }) => void;

let gc: Gc | undefined;

export function exposedGc(): Gc {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  return gc;
}

/** At most this often: a full collection of a small heap takes a few milliseconds. */
const MIN_INTERVAL_MS = 250;
let last = 0;

/**
 * Frees the Buffers of finished streams: a full collection, since chunks that lived through a
 * transfer were promoted out of the young generation. Called after each file streamed, at most
 * every MIN_INTERVAL_MS.
 */
export function releaseGarbage(): void {
  const now = performance.now();
  if (now - last < MIN_INTERVAL_MS) return;
  last = now;
  exposedGc()();
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
