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
