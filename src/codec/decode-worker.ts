/**
 * Worker-thread side of OffThreadDecoder: runs the codec's own decoder (streams.ts) for each
 * stream the main thread opens, and sends the decoded bytes back only as far as the main thread's
 * credit reaches, so a highly compressed input (a zero page decodes 1000:1) never piles up here.
 */
import { parentPort } from 'node:worker_threads';
import type { Transform } from 'node:stream';
import { consumesInputAtCallback, decompressStream } from './streams.js';
import { ArrayBufferShelf } from './blocks.js';
import { ZSTD_OUT_SIZE } from './decode-zstd.js';
import { CorruptDataError } from './errors.js';
import type { FromWorker, ToWorker } from './decode-protocol.js';
import { youngCollector } from '../util/gc.js';

const port = parentPort;
if (!port) throw new Error('decode-worker.js runs only as a worker thread');

interface Lane {
  decoder: Transform;
  credit: number;
  /** Whether the decoder is done with an input chunk at its write callback (streams.ts), so its buffer can go back. */
  returnsInput: boolean;
}

const lanes = new Map<number, Lane>();

/** Each decoded chunk is garbage once copied out: freed every 8 MiB, not when V8 gets to 64 MiB of them. */
const collect = youngCollector(8 * 1024 * 1024);

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/**
 * Transfer buffers the main thread gave back after copying out of them, rather than a fresh
 * ArrayBuffer per decoded chunk allocated here and freed there. zstd's output block, the size zstd
 * decodes into (and more than snappy's 64 KiB chunks).
 */
const transfers = new ArrayBufferShelf(ZSTD_OUT_SIZE, 32);

/** A copy in an ArrayBuffer of its own: one the decoder's buffer shares (or a native one) cannot be transferred. */
function owned(buf: Buffer): ArrayBuffer {
  const ab = transfers.take(buf.length);
  new Uint8Array(ab).set(buf);
  return ab;
}

/** zstd decodes straight into transfer buffers (decode-zstd.ts), which then travel without a copy. */
const transferView = (size: number): Buffer => Buffer.from(transfers.take(size));

function open(id: number, codec: ToWorker & { op: 'open' }): void {
  const direct = codec.codec === 'zstd';
  const decoder = decompressStream(codec.codec, direct ? transferView : undefined);
  const lane: Lane = { decoder, credit: codec.credit, returnsInput: consumesInputAtCallback(codec.codec) };
  lanes.set(id, lane);
  decoder.on('data', (buf: Buffer) => {
    // A decoded chunk is a view of a transfer buffer's first bytes when zstd decoded into it.
    const chunk = direct ? (buf.buffer as ArrayBuffer) : owned(buf);
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
  if (msg.op === 'give') return transfers.give(msg.chunk);
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
