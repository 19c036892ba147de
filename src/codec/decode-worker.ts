/**
 * Worker-thread side of OffThreadDecoder: runs the codec's own decoder (streams.ts) for each
 * stream the main thread opens, and sends the decoded bytes back only as far as the main thread's
 * credit reaches, so a highly compressed input (a zero page decodes 1000:1) never piles up here.
 */
import { setFlagsFromString } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import type { Transform } from 'node:stream';
import { decompressStream } from './streams.js';
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
}

const lanes = new Map<number, Lane>();

/** Each decoded chunk is garbage once copied out: freed every 8 MiB, not when V8 gets to 64 MiB of them. */
const collect = youngCollector(8 * 1024 * 1024);
/**
 * ...and freed by the collection itself, not later by V8's background sweeper: snappy leaves a
 * dead 64 KiB buffer per frame chunk (snappy-framing.ts), and on a busy machine the sweeper fell
 * up to 16 MiB of them behind (the worker's Buffers after a full collection: 2-4 MiB with this,
 * up to 17 MiB without). The flag is the whole process's, as startBufferCollector sets it (gc.ts).
 */
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/**
 * Transfer buffers the main thread gave back after copying out of them, rather than a fresh
 * ArrayBuffer per decoded chunk allocated here and freed there. zstd's output block, the size zstd
 * decodes into (and snappy's two 64 KiB chunks, SNAPPY_OUT_SIZE).
 */
const transfers = new ArrayBufferShelf(ZSTD_OUT_SIZE, 32);

/** Both decoders write straight into transfer buffers (decode-zstd.ts, snappy-framing.ts), which then travel without a copy. */
const transferView = (size: number): Buffer => Buffer.from(transfers.take(size));

function open(id: number, codec: ToWorker & { op: 'open' }): void {
  const decoder = decompressStream(codec.codec, transferView);
  const lane: Lane = { decoder, credit: codec.credit };
  lanes.set(id, lane);
  decoder.on('data', (buf: Buffer) => {
    // A decoded chunk is a view of a transfer buffer's first bytes.
    const chunk = buf.buffer as ArrayBuffer;
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

function addCredit(lane: Lane, n: number): void {
  lane.credit += n;
  if (lane.credit > 0) lane.decoder.resume();
}

port.on('message', (msg: ToWorker) => {
  if (msg.op === 'open') return open(msg.id, msg);
  // The buffer is the shelf's whatever became of its stream; the credit is its stream's.
  if (msg.op === 'give') transfers.give(msg.chunk);
  const lane = lanes.get(msg.id);
  if (!lane) return;
  switch (msg.op) {
    case 'give':
      if (msg.credit > 0) addCredit(lane, msg.credit);
      return;
    case 'data':
      // Both decoders are done with an input chunk at its write callback: its buffer goes back.
      lane.decoder.write(Buffer.from(msg.chunk, 0, msg.length), () => send({ id: msg.id, op: 'consumed', chunk: msg.chunk }, [msg.chunk]));
      return;
    case 'end':
      lane.decoder.end();
      return;
    case 'credit':
      addCredit(lane, msg.n);
      return;
    case 'close':
      lanes.delete(msg.id);
      lane.decoder.destroy();
      return;
  }
});
