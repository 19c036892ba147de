/** Messages between CompressionPool and its worker threads. */
import type { CodecName } from './types.js';

export interface CompressJob {
  id: number;
  codec: CodecName;
  data: ArrayBuffer;
}

export type CompressReply = { id: number; data: ArrayBuffer; body: ArrayBuffer; md5: string } | { id: number; error: string };

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
