/** Messages between CompressionPool and its worker threads. */
import type { CodecName } from './types.js';

export interface CompressJob {
  codec: CodecName;
  path: string;
  md5: boolean;
  /** For 'none': a recycled buffer to read the file into when it is large enough (transferred). */
  into?: ArrayBuffer;
}

/** body holds the result in its first bodyLength bytes (a recycled buffer may be larger). */
export type CompressReply = { body: ArrayBuffer; bodyLength: number; md5?: string; size: number } | { error: string };

/**
 * An ArrayBuffer holding exactly the buffer's bytes and nothing else, so it can be transferred
 * to another thread: a large Buffer usually owns its memory outright (no copy then); a small one
 * may share Node's allocation pool, and transferring that would detach its neighbours.
 */
export function exclusiveArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}
