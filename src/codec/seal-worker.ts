/**
 * Worker-thread side of age stream encryption (codec/age.ts): seals one object's payload, in the
 * order its pieces arrive, so a backup's main thread (tar, hashing, uploads) does not also run
 * the cipher. Each reply is one buffer, handed back by transfer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PayloadSealer } from './age-payload.js';
import { exclusiveArrayBuffer } from './transfer.js';

const port = parentPort;
if (!port) throw new Error('seal-worker.js runs only as a worker thread');

const sealer = new PayloadSealer(Buffer.from(workerData as Uint8Array));

/** A piece to seal, or null: the source ended, seal the last chunk. */
port.on('message', (piece: Uint8Array | null) => {
  const parts = piece ? sealer.add(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)) : sealer.finish();
  const out = Buffer.concat(parts);
  const body = exclusiveArrayBuffer(out);
  port.postMessage({ body, length: out.length }, [body]);
});
