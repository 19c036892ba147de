/**
 * Decoding off the main thread. zstd-napi and snappy decode synchronously, so on the main thread a
 * restore used one core for both decoding and writing the files; here a worker thread decodes
 * while the main thread parses the tar and writes, as zlib's thread pool already does for gzip.
 *
 * Memory stays bounded both ways: at most IN_FLIGHT compressed chunks are on their way to the
 * worker before the writer waits, and the worker sends at most CREDIT decoded chunks ahead of what
 * the reader has taken (a Transform's usual backpressure, carried across the thread boundary).
 * Each message costs both threads a structured clone: the socket's chunks (TLS records, 16 KiB)
 * travel gathered into the shelf's 64 KiB buffers, and a decoded chunk's buffer goes back with the
 * credit it earns, in one message (postMessage was the main thread's largest cost while a WAN
 * restore extracted: 0.21 of 1.6 CPU seconds, docs/measurements/recovery-time.md).
 * Workers: one per core left over by the main thread, shared by every stream, ended when idle.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { CorruptDataError } from './errors.js';
import { OFF_THREAD_CODECS, type FromWorker, type ToWorker } from './decode-protocol.js';
import { decompressStream } from './streams.js';
import { ArrayBufferShelf } from './blocks.js';
import type { CodecName } from './types.js';

const WORKER_SCRIPT = new URL('./decode-worker.js', import.meta.url);
/** Compressed chunks sent before the writer waits for the worker to take one. */
const IN_FLIGHT = 4;
/** Decoded chunks (64-128 KiB each) the worker may send ahead of the reader. */
const CREDIT = 8;
/** An idle worker is kept this long for the next stream (a restore opens one per tar), then ended. */
const IDLE_MS = 2000;

interface Thread {
  worker: Worker;
  lanes: Map<number, OffThreadDecoder>;
  idle?: NodeJS.Timeout;
}

const threads: Thread[] = [];
/** Buffers compressed chunks travel to the workers in, back once decoded (shared by every stream). */
const inputs = new ArrayBufferShelf(64 * 1024, 4 * IN_FLIGHT);
let nextId = 1;

function spawn(): Thread {
  // A small heap: the worker holds a few chunks and a decoder, and every MiB its young
  // generation may grow to is resident set the restore's 160 MB bar counts.
  const worker = new Worker(WORKER_SCRIPT, { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 } });
  const thread: Thread = { worker, lanes: new Map() };
  worker.on('message', (msg: FromWorker) => thread.lanes.get(msg.id)?.receive(msg));
  const fail = (err: Error) => {
    const i = threads.indexOf(thread);
    if (i >= 0) threads.splice(i, 1);
    for (const lane of thread.lanes.values()) lane.destroy(err);
    thread.lanes.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`decode worker exited with code ${code}`)));
  threads.push(thread);
  return thread;
}

/** The thread with the fewest streams, starting one while there are fewer than the spare cores. */
function pick(): Thread {
  const least = threads.reduce<Thread | undefined>((best, t) => (!best || t.lanes.size < best.lanes.size ? t : best), undefined);
  if (least && (least.lanes.size === 0 || threads.length >= Math.max(1, availableParallelism() - 1))) return least;
  return spawn();
}

class OffThreadDecoder extends Transform {
  private readonly id = nextId++;
  private readonly thread = pick();
  private inFlight = 0;
  private waiting: TransformCallback | undefined;
  private flushed: TransformCallback | undefined;
  /** Credit the reader owes the worker: chunks pushed while the readable side was full. */
  private owed = 0;
  /** Compressed bytes gathered for the next message, and how many. */
  private gathered: ArrayBuffer | undefined;
  private gatheredLength = 0;

  constructor(private readonly codec: CodecName) {
    super();
    clearTimeout(this.thread.idle);
    this.thread.lanes.set(this.id, this);
    // Holds the process open while a stream decodes (the worker's reply may be all that is pending).
    this.thread.worker.ref();
    this.post({ id: this.id, op: 'open', codec, credit: CREDIT });
  }

  private post(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.thread.worker.postMessage(msg, transfer);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    let room = true;
    if (this.gathered && this.gatheredLength + chunk.length > this.gathered.byteLength) room = this.send();
    // A copy the worker can own (the chunk usually shares its ArrayBuffer with the socket's), in a
    // buffer the worker handed back, so that memory stays on the thread that allocated it.
    this.gathered ??= inputs.take(chunk.length);
    new Uint8Array(this.gathered).set(chunk, this.gatheredLength);
    this.gatheredLength += chunk.length;
    // Sent once a chunk of the same size would no longer fit.
    if (this.gathered.byteLength - this.gatheredLength < chunk.length) room = this.send();
    if (room) callback();
    else this.waiting = callback;
  }

  /** Sends the gathered bytes; false when IN_FLIGHT messages now wait for the worker. */
  private send(): boolean {
    const chunk = this.gathered!;
    this.post({ id: this.id, op: 'data', chunk, length: this.gatheredLength }, [chunk]);
    this.gathered = undefined;
    this.gatheredLength = 0;
    return ++this.inFlight < IN_FLIGHT;
  }

  override _flush(callback: TransformCallback): void {
    if (this.gathered) this.send();
    this.flushed = callback;
    this.post({ id: this.id, op: 'end' });
  }

  override _read(size: number): void {
    if (this.owed > 0) {
      this.post({ id: this.id, op: 'credit', n: this.owed });
      this.owed = 0;
    }
    super._read(size);
  }

  receive(msg: FromWorker): void {
    switch (msg.op) {
      case 'consumed': {
        inputs.give(msg.chunk);
        this.inFlight--;
        const cb = this.waiting;
        this.waiting = undefined;
        cb?.();
        return;
      }
      case 'data': {
        // Copied into this thread's own memory and the transfer buffer handed back for reuse
        // (decode-worker.ts says why).
        const decoded = Buffer.allocUnsafe(msg.length);
        decoded.set(new Uint8Array(msg.chunk, 0, msg.length));
        const taken = this.push(decoded);
        if (!taken) this.owed++;
        this.post({ id: this.id, op: 'give', chunk: msg.chunk, credit: taken ? 1 : 0 }, [msg.chunk]);
        return;
      }
      case 'end':
        this.release();
        this.flushed?.();
        return;
      case 'error':
        this.destroy(msg.corrupt ? new CorruptDataError(this.codec, msg.message) : new Error(msg.message));
        return;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.thread.lanes.has(this.id)) this.post({ id: this.id, op: 'close' });
    this.release();
    callback(err);
  }

  private release(): void {
    const t = this.thread;
    if (!t.lanes.delete(this.id) || t.lanes.size > 0) return;
    idle(t);
  }
}

/** Ends a thread that no stream takes within IDLE_MS; meanwhile it keeps no process alive (`pgark restore` once waited IDLE_MS after its work for it). */
function idle(t: Thread): void {
  t.worker.unref();
  t.idle = setTimeout(() => {
    if (t.lanes.size > 0) return;
    const i = threads.indexOf(t);
    if (i >= 0) threads.splice(i, 1);
    void t.worker.terminate();
  }, IDLE_MS);
  t.idle.unref();
}

/**
 * Starts a thread for `codec` before its first stream. A worker's start (a new isolate loading the
 * codecs: 0.16-0.19 CPU s, 0.6 s of wall time at load 6) otherwise comes between a restore's first
 * compressed byte and its first decoded one; started when the restore learns its codec from the
 * pre-checks, it runs beside their round trips. Unused, it ends like any idle thread.
 */
export function startDecodeThread(codec: CodecName): void {
  if (OFF_THREAD_CODECS.has(codec) && threads.length === 0) idle(spawn());
}

/** decompressStream, with zstd and snappy decoded on a worker thread. */
export function decompressOffThread(codec: CodecName): Transform {
  return OFF_THREAD_CODECS.has(codec) ? new OffThreadDecoder(codec) : decompressStream(codec);
}
