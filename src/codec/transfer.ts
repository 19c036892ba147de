/** Handing buffers between threads by transfer, without detaching memory anyone else uses. */

/**
 * An ArrayBuffer holding exactly the buffer's bytes and nothing else, so it can be transferred:
 * a large Buffer usually owns its memory outright (no copy then); a small one may share Node's
 * allocation pool, and transferring that would detach its neighbours.
 */
export function exclusiveArrayBuffer(buf: Uint8Array): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}
