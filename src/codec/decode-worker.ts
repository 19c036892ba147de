/**
 * Worker-thread side of OffThreadDecoder: runs the codec's own decoder (streams.ts) for each
 * stream the main thread opens, and sends the decoded bytes back only as far as the main thread's
 * credit reaches, so a highly compressed input (a zero page decodes 1000:1) never piles up here.
 */
import { parentPort } from 'node:worker_threads';
import type { Transform } from 'node:stream';
import { decompressStream } from './streams.js';
import { CorruptDataError } from './errors.js';
import type { FromWorker, ToWorker } from './decode-protocol.js';
import { youngCollector } from '../util/gc.js';

const port = parentPort;
if (!port) throw new Error('decode-worker.js runs only as a worker thread');

interface Lane {
  decoder: Transform;
  credit: number;
}

const lanes = new Map<number, Lane>();

/** Each decoded chunk is garbage once copied out: freed every 8 MiB, not when V8 gets to 64 MiB of them. */
const collect = youngCollector(8 * 1024 * 1024);

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/** A copy in an ArrayBuffer of its own: one the decoder's buffer shares (or a native one) cannot be transferred. */
function owned(buf: Buffer): ArrayBuffer {
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  return ab;
}

function open(id: number, codec: ToWorker & { op: 'open' }): void {
  const decoder = decompressStream(codec.codec);
  const lane: Lane = { decoder, credit: codec.credit };
  lanes.set(id, lane);
  decoder.on('data', (buf: Buffer) => {
    const chunk = owned(buf);
    send({ id, op: 'data', chunk }, [chunk]);
    collect(buf.length);
    if (--lane.credit <= 0) decoder.pause();
  });
  decoder.on('end', () => {
    lanes.delete(id);
    send({ id, op: 'end' });
  });
  decoder.on('error', (err: Error) => {
    lanes.delete(id);
    send({ id, op: 'error', message: err instanceof CorruptDataError ? err.detail : err.message, corrupt: err instanceof CorruptDataError });
  });
}

port.on('message', (msg: ToWorker) => {
  if (msg.op === 'open') return open(msg.id, msg);
  const lane = lanes.get(msg.id);
  if (!lane) return;
  switch (msg.op) {
    case 'data':
      lane.decoder.write(Buffer.from(msg.chunk), () => send({ id: msg.id, op: 'consumed' }));
      return;
    case 'end':
      lane.decoder.end();
      return;
    case 'credit':
      lane.credit += msg.n;
      if (lane.credit > 0) lane.decoder.resume();
      return;
    case 'close':
      lanes.delete(msg.id);
      lane.decoder.destroy();
      return;
  }
});
