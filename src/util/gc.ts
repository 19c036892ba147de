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

/** Frees the Buffers that died young (chunks of a finished stream): a scavenge, not a full collection. */
export function releaseYoungGarbage(): void {
  exposedGc()({ type: 'minor' });
}
