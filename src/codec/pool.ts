/**
 * Whole-file compression on worker threads. The resident WAL daemon compresses a 16 MiB segment
 * in about 120 ms (zstd level 3 here); on its own event loop that stalls every upload in flight,
 * and it keeps the work on one core. Each worker runs one job at a time: it reads the file into a
 * buffer it reuses, compresses it, computes the body's MD5 if asked (S3 gets it as Content-MD5), and transfers
 * the body to the caller without a copy. The uncompressed bytes never reach the caller's heap.
 *
 * Memory: per worker, one reused input buffer (the largest file seen) plus the output of the job
 * it runs; queued jobs hold nothing. Workers: `size` (default: the machine's cores). Bodies read
 * for 'none' can be handed back with recycle() once uploaded: the next such file is read into one
 * of them, so a daemon archiving uncompressed segments does not allocate (and collect) a new
 * segment-sized buffer per segment. At most MAX_SPARE of them are kept.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CodecName } from './types.js';
import type { AgeKeys } from './age.js';
import type { CompressJob, CompressReply } from './pool-protocol.js';

const WORKER_SCRIPT = new URL('./compress-worker.js', import.meta.url);
const MAX_SPARE = 8;
/** Smaller bodies (history files) are not worth keeping. */
const MIN_SPARE_BYTES = 1024 * 1024;

export interface CompressedFile {
  /** The compressed bytes (the file's own bytes for 'none'). */
  body: Buffer;
  /** Base64 MD5 of body, when asked for. */
  md5?: string;
  /** Size of the file that was read. */
  size: number;
}

interface Job {
  message: CompressJob;
  resolve(r: CompressedFile): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

export class CompressionPool {
  private readonly slots: Slot[] = [];
  private readonly pending: Job[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private closed = false;

  constructor(private readonly size: number = Math.max(1, availableParallelism())) {}

  compressFile(codec: CodecName, path: string, opts: { md5: boolean; age?: AgeKeys }): Promise<CompressedFile> {
    if (this.closed) return Promise.reject(new Error('compression pool is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ message: { codec, path, md5: opts.md5, age: opts.age }, resolve, reject });
      this.dispatch();
    });
  }

  /** Gives back the memory of a 'none' body that is no longer used by anyone. */
  recycle(body: Buffer): void {
    const memory = body.buffer;
    if (this.closed || this.spare.length >= MAX_SPARE || !(memory instanceof ArrayBuffer) || memory.byteLength < MIN_SPARE_BYTES) return;
    this.spare.push(memory);
  }

  async close(): Promise<void> {
    this.spare.length = 0;
    this.closed = true;
    for (const job of this.pending.splice(0)) job.reject(new Error('compression pool is closed'));
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Hands queued jobs to idle workers, starting workers up to `size`; synchronous, so no job can take a busy worker. */
  private dispatch(): void {
    while (this.pending.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const job = this.pending.shift()!;
      slot.job = job;
      const into = job.message.codec === 'none' && !job.message.age ? this.spare.pop() : undefined;
      slot.worker.postMessage({ ...job.message, into }, into ? [into] : []);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SCRIPT);
    // Idle workers must not keep the daemon alive past its idle timeout.
    worker.unref();
    const slot: Slot = { worker };
    this.slots.push(slot);
    worker.on('message', (reply: CompressReply) => {
      const job = slot.job;
      slot.job = undefined;
      if ('error' in reply) job?.reject(new Error(reply.error));
      else job?.resolve({ body: Buffer.from(reply.body, 0, reply.bodyLength), md5: reply.md5, size: reply.size });
      this.dispatch();
    });
    // A crashed worker fails its job and is replaced on demand; the pool itself stays usable.
    worker.on('error', (err) => this.drop(slot, err));
    worker.on('exit', (code) => this.drop(slot, new Error(`compression worker exited with code ${code}`)));
    return slot;
  }

  private drop(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    slot.job?.reject(err);
    slot.job = undefined;
    this.dispatch();
  }
}
