/**
 * Worker-thread side of CompressionPool: reads one file per message into a buffer it keeps for
 * the next file, compresses it, encrypts it when asked (age), hashes the result if asked, and hands
 * the result back by transfer. Only the stored bytes ever reach the main thread.
 */
import { open } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { digestOf } from '../io/hash.js';
import { compressBuffer, compressParts, encryptBuffer } from './index.js';
import type { CompressJob, CompressReply } from './pool-protocol.js';

/**
 * An ArrayBuffer holding exactly the buffer's bytes and nothing else, so it can be transferred:
 * a large Buffer usually owns its memory outright (no copy then); a small one may share Node's
 * allocation pool, and transferring that would detach its neighbours.
 */
function exclusiveArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}

const port = parentPort;
if (!port) throw new Error('compress-worker.js runs only as a worker thread');

let scratch = Buffer.alloc(0);

/**
 * The whole file: in the reused scratch buffer when it will be compressed; when it is the body
 * itself, in the caller's recycled buffer if that is large enough, else in a new one.
 */
async function readWhole(path: string, asBody: boolean, into: ArrayBuffer | undefined): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    let target: Buffer;
    if (asBody) target = into && into.byteLength >= size ? Buffer.from(into, 0, size) : Buffer.allocUnsafeSlow(size);
    else {
      if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(size);
      target = scratch.subarray(0, size);
    }
    let done = 0;
    while (done < size) {
      const { bytesRead } = await file.read(target, done, size - done, done);
      if (bytesRead === 0) throw new Error(`${path}: file shrank while being read (${done} of ${size} bytes)`);
      done += bytesRead;
    }
    return target;
  } finally {
    await file.close();
  }
}

port.on('message', (job: CompressJob) => {
  void (async () => {
    try {
      // The file's own bytes are the body only when nothing transforms them.
      const asIs = job.codec === 'none' && !job.age;
      const data = await readWhole(job.path, asIs, job.into);
      // Encryption copies the compressed bytes anyway: it takes the compressor's pieces unjoined.
      const body = job.age
        ? await encryptBuffer(job.codec === 'none' ? data : await compressParts(job.codec, data), job.age)
        : job.codec === 'none'
          ? data
          : await compressBuffer(job.codec, data);
      // Hashed here, on the worker's thread, where the whole body already is.
      const md5 = job.md5 ? digestOf('md5', body, 'base64') : undefined;
      // A 'none' body sits at the start of memory it owns (new, or recycled and maybe larger): it goes back whole.
      const transferable = asIs ? (data.buffer as ArrayBuffer) : exclusiveArrayBuffer(body);
      port.postMessage({ body: transferable, bodyLength: body.length, md5, size: data.length } satisfies CompressReply, [transferable]);
    } catch (err) {
      port.postMessage({ error: (err as Error).message } satisfies CompressReply);
    }
  })();
});
