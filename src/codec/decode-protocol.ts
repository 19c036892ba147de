/** Messages between OffThreadDecoder (decode-thread.ts) and its worker thread (decode-worker.ts). */
import type { CodecName } from './types.js';

/**
 * Codecs whose decoder otherwise runs on the main thread (gzip inflates on libuv's pool, lz4/bzip2/xz
 * in child processes). Each one's decoder writes into the output buffers decompressStream supplies
 * and is done with an input chunk at its write callback: the worker relies on both.
 */
export const OFF_THREAD_CODECS: ReadonlySet<CodecName> = new Set(['zstd', 'snappy']);

export type ToWorker =
  | { id: number; op: 'open'; codec: CodecName; credit: number }
  | { id: number; op: 'data'; chunk: ArrayBuffer; length: number }
  | { id: number; op: 'end' }
  | { id: number; op: 'credit'; n: number }
  | { id: number; op: 'close' }
  /** A transfer buffer the main thread has copied out of, back for the next decoded chunk, with the credit its chunk earned (0 or 1). */
  | { id: number; op: 'give'; chunk: ArrayBuffer; credit: number };

export type FromWorker =
  /** The compressed chunk is decoded; its buffer comes back for the next one. */
  | { id: number; op: 'consumed'; chunk: ArrayBuffer }
  | { id: number; op: 'data'; chunk: ArrayBuffer; length: number }
  | { id: number; op: 'end' }
  | { id: number; op: 'error'; message: string; corrupt: boolean };
