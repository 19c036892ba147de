/**
 * File encoding (encode-file.ts) on worker threads. The resident WAL daemon compresses a 16 MiB
 * segment in about 50 ms (zstd level 1, encode-file.ts WAL_ZSTD_LEVEL) and hashes it for
 * Content-MD5 in about 30 ms; on its own event loop that stalls every upload in flight, and it
 * keeps the work on one core. Each
 * worker runs one job at a time and streams it in CHUNK-sized pieces, so a worker holds a few
 * chunks and its compressor's window, never a whole file; the main thread gets back only a length
 * and a digest, and uploads the body from its file.
 *
 * Workers: `size` (default: the machine's cores), started on the first job that needs one and
 * stopped after `idleMs` without a job: each is its own V8 isolate, about 40 MiB resident, which a
 * resident process that stores WAL uncompressed (or compresses only now and then) should not keep.
 * Queued jobs hold nothing.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EncodedFile, EncodeJob } from './encode-file.js';
import type { EncodeReply } from './pool-protocol.js';

const WORKER_SCRIPT = new URL('./compress-worker.js', import.meta.url);

interface Job {
  message: EncodeJob;
  resolve(r: EncodedFile): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  job?: Job;
  /** Set while the worker has no job: stops it when it fires. */
  idle?: NodeJS.Timeout;
}

/**
 * A worker's heap holds its modules (about 7.5 MiB) and one job's stream objects; its Buffers are
 * off the heap. A 1 MiB young generation (V8 sizes a worker's at 3 semi-spaces of the process's
 * 1 MiB otherwise) and a 1 MiB stack: about 1 MiB less per worker, the old-generation cap far
 * above what a job needs, so a runaway job fails instead of growing the daemon.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32, stackSizeMb: 1 };

/** Without idleMs: how long a worker waits for its next job before it is stopped. */
export const DEFAULT_WORKER_IDLE_MS = 30_000;

export class CompressionPool {
  private readonly slots: Slot[] = [];
  private readonly pending: Job[] = [];
  private closed = false;

  constructor(
    private readonly size: number = Math.max(1, availableParallelism()),
    private readonly idleMs: number = DEFAULT_WORKER_IDLE_MS,
  ) {}

  /** Workers running now (tests and benches observe the idle stop through it). */
  get workers(): number {
    return this.slots.length;
  }

  encodeFile(job: EncodeJob): Promise<EncodedFile> {
    if (this.closed) return Promise.reject(new Error('compression pool is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ message: job, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.pending.splice(0)) job.reject(new Error('compression pool is closed'));
    const slots = this.slots.splice(0);
    for (const s of slots) clearTimeout(s.idle);
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
      clearTimeout(slot.idle);
      slot.idle = undefined;
      slot.job = job;
      slot.worker.postMessage(job.message);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SCRIPT, { resourceLimits: WORKER_LIMITS });
    // Idle workers must not keep the daemon alive past its idle timeout.
    worker.unref();
    const slot: Slot = { worker };
    this.slots.push(slot);
    worker.on('message', (reply: EncodeReply) => {
      const job = slot.job;
      slot.job = undefined;
      if ('error' in reply) job?.reject(new Error(reply.error));
      else job?.resolve(reply);
      this.dispatch();
      if (!slot.job) slot.idle = setTimeout(() => this.stop(slot), this.idleMs).unref();
    });
    // A crashed worker fails its job and is replaced on demand; the pool itself stays usable.
    worker.on('error', (err) => this.drop(slot, err));
    worker.on('exit', (code) => this.drop(slot, new Error(`compression worker exited with code ${code}`)));
    return slot;
  }

  /** Stops an idle worker; the next job that needs one starts another. */
  private stop(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i < 0 || slot.job) return;
    this.slots.splice(i, 1);
    void slot.worker.terminate();
  }

  private drop(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    clearTimeout(slot.idle);
    slot.job?.reject(err);
    slot.job = undefined;
    this.dispatch();
  }
}
