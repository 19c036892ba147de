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
  /**
   * Whether the decoder is done with an input chunk at its write callback: zstd-napi's decodes it
   * whole; the snappy frame decoder keeps a view of an unfinished frame, so its input stays here.
   */
  returnsInput: boolean;
}

const lanes = new Map<number, Lane>();

/** Each decoded chunk is garbage once copied out: freed every 8 MiB, not when V8 gets to 64 MiB of them. */
const collect = youngCollector(8 * 1024 * 1024);

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/**
 * Transfer buffers the main thread gave back after copying out of them. A fresh ArrayBuffer per
 * decoded chunk, allocated here and freed by the main thread, kept a 1 GB zstd restore 30-40 MB
 * above the same decode on one thread (and growing with the restore: 207 MB at 10 GB).
 */
const spare: ArrayBuffer[] = [];
const TRANSFER_SIZE = 256 * 1024;
const SPARE_MAX = 32;

/** A copy in an ArrayBuffer of its own: one the decoder's buffer shares (or a native one) cannot be transferred. */
function owned(buf: Buffer): ArrayBuffer {
  let ab = spare.pop();
  while (ab && ab.byteLength < buf.length) ab = spare.pop();
  ab ??= new ArrayBuffer(Math.max(buf.length, TRANSFER_SIZE));
  new Uint8Array(ab).set(buf);
  return ab;
}

function open(id: number, codec: ToWorker & { op: 'open' }): void {
  const decoder = decompressStream(codec.codec);
  const lane: Lane = { decoder, credit: codec.credit, returnsInput: codec.codec === 'zstd' };
  lanes.set(id, lane);
  decoder.on('data', (buf: Buffer) => {
    const chunk = owned(buf);
    send({ id, op: 'data', chunk, length: buf.length }, [chunk]);
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
  if (msg.op === 'give') {
    if (spare.length < SPARE_MAX) spare.push(msg.chunk);
    return;
  }
  const lane = lanes.get(msg.id);
  if (!lane) return;
  switch (msg.op) {
    case 'data':
      lane.decoder.write(Buffer.from(msg.chunk, 0, msg.length), () =>
        lane.returnsInput ? send({ id: msg.id, op: 'consumed', chunk: msg.chunk }, [msg.chunk]) : send({ id: msg.id, op: 'consumed' }),
      );
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
