/**
 * The resident archiver of one data directory. PostgreSQL runs archive_command for one segment
 * at a time; this service, asked for segment N, also looks ahead over pg_wal/archive_status/*.ready
 * and uploads up to wal.maxParallel segments at once over the same connections. A segment stored
 * ahead gets a marker in the archive spool, so the archive_command for it returns at once.
 *
 * Safety: a marker is written (temp file + rename) only after the store acknowledged the upload,
 * and records the file's inode, size and mtime, so a marker never vouches for other bytes. A
 * request is answered only from an upload that completed in this process or from the store itself.
 * Killing the daemon at any point loses only work in progress: the next request redoes it, and
 * the idempotent upload turns an object that did reach the store into "already archived".
 */
import { readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { CompressionPool } from '../codec/pool.js';
import { pathExists } from '../util/fs.js';
import { untracked, type TransferTracker } from '../util/gc.js';
import { logger } from '../util/log.js';
import { archiveWalFile, EmptyArchiveGate, SPILL_SUFFIX, TransferSlots, type ArchiveResult } from './archive.js';
import type { ConfigRef } from './protocol.js';
import { archiveMarkerMatches, fileIdentity, INFLIGHT_SUFFIX, REQUEST_SUFFIX, type WalRuntime } from './runtime.js';
import { ArchivedWalIndex } from './stored-wal.js';
import type { WalTarget, WalTargetCache } from './target.js';

/**
 * gzip compressions at once on the daemon's thread (ArchiveOptions.encodes). zlib deflates on
 * libuv's thread pool, 4 threads: a fifth deflate only waits in its queue, while holding its
 * 256 KiB of deflate state and its chunks. At maxParallel 8 look-ahead runs 16 pushes; all 16
 * compressing at once peaked the daemon at 110 MiB (docs/wal-archiving.md).
 */
const INLINE_ENCODES = 4;

/** A look-ahead upload that failed is not retried by look-ahead for this long (PostgreSQL's own call still retries). */
const LOOKAHEAD_RETRY_MS = 10_000;

/** How one archive() request ended: what PostgreSQL is told for the segment at `path`. */
export type ArchiveOutcome = { path: string; result: ArchiveResult; error?: undefined } | { path: string; error: Error; result?: undefined };

export interface ArchiveServiceOptions {
  /** Reads, compresses and hashes on worker threads. */
  compression?: CompressionPool;
  /**
   * Told of every archive() request's outcome (the agent's metrics), once per request: a segment
   * stored ahead counts when PostgreSQL asks for it, not when look-ahead uploads it.
   */
  onResult?: (outcome: ArchiveOutcome) => void;
  /**
   * How long after PostgreSQL's last request a failed upload still moves look-ahead on (default:
   * always). The daemon passes twice its idle timeout: with the store down and the server stopped,
   * failures would otherwise start each other for good, and the daemon would never go idle.
   */
  failureRetryWindowMs?: number;
  /** Told of each upload while it runs (the daemon's Buffer collector checks only then). */
  trackTransfer?: TransferTracker;
}

interface Job {
  name: string;
  promise: Promise<ArchiveResult>;
}

export class ArchiveService {
  private readonly jobs = new Map<string, Job>();
  private readonly failedAt = new Map<string, number>();
  /** Segments stored by this process and the file identity they were stored from. */
  private readonly stored = new Map<string, { identity: string; result: ArchiveResult }>();
  private readonly gate: EmptyArchiveGate;
  private readonly archived = new ArchivedWalIndex();
  /** The upload slots of each target (a reloaded target may change wal.maxParallel). */
  private readonly slots = new WeakMap<WalTarget, TransferSlots>();
  private readonly encodes = new TransferSlots(INLINE_ENCODES);
  private pumping = false;
  private pumpAgain = false;

  private readonly compression?: CompressionPool;
  private readonly onResult?: (outcome: ArchiveOutcome) => void;
  private readonly failureRetryWindowMs: number;
  private readonly trackTransfer: TransferTracker;
  private lastRequestAt = Date.now();

  constructor(
    private readonly rt: WalRuntime,
    private readonly targets: WalTargetCache,
    opts: ArchiveServiceOptions = {},
  ) {
    this.gate = new EmptyArchiveGate(rt.pgdata);
    this.compression = opts.compression;
    this.onResult = opts.onResult;
    this.failureRetryWindowMs = opts.failureRetryWindowMs ?? Infinity;
    this.trackTransfer = opts.trackTransfer ?? untracked;
  }

  /** Uploads in progress (the daemon stays up while any is running). */
  get busy(): boolean {
    return this.jobs.size > 0;
  }

  /**
   * Resolves once the WAL file at `path` is durably stored; rejects with the reason otherwise.
   * `answer: 'marker'`: PostgreSQL's caller is bin/pgark waiting on the spool (an archive request
   * it left as a file, archive-requests.ts), so the segment's marker is the answer and stays.
   */
  async archive(path: string, ref: ConfigRef, answer: 'reply' | 'marker' = 'reply'): Promise<ArchiveResult> {
    this.lastRequestAt = Date.now();
    let result: ArchiveResult;
    try {
      result = await this.answer(path, ref, answer);
    } catch (err) {
      this.onResult?.({ path, error: err as Error });
      throw err;
    }
    this.onResult?.({ path, result });
    return result;
  }

  private async answer(path: string, ref: ConfigRef, answer: 'reply' | 'marker'): Promise<ArchiveResult> {
    const target = await this.targets.get(ref);
    const name = basename(path);
    const done = this.jobs.has(name) ? undefined : this.storedHere(name, path);
    const t0 = performance.now();
    // The drain's timeline at debug level: how far ahead look-ahead was when PostgreSQL asked.
    logger().debug({ wal: name, found: done ? 'stored' : this.jobs.has(name) ? 'in flight' : 'not started', inflight: this.jobs.size }, 'WAL archive request');
    const pending = done ? Promise.resolve(done) : (this.jobs.get(name) ?? this.start(target, path, ref, true)).promise;
    void this.pump(target, dirname(path), ref);
    const result = await pending;
    logger().debug({ wal: name, waitedMs: Math.round(performance.now() - t0), inflight: this.jobs.size, answer }, 'WAL archive answered');
    if (answer === 'marker') {
      // Stored earlier, its marker may be gone with an earlier answer: bin/pgark reads it now.
      const stored = done && this.stored.get(name);
      if (stored) await this.writeMarker(name, stored.identity);
      return result;
    }
    // PostgreSQL marks this one .done itself once we answer; its marker is no longer needed.
    await unlink(join(this.rt.archiveSpool, name)).catch(() => undefined);
    return result;
  }

  private start(target: WalTarget, path: string, ref: ConfigRef, urgent = false): Job {
    const name = basename(path);
    const promise = this.trackTransfer((async () => {
      const t0 = performance.now();
      const inflight = join(this.rt.archiveSpool, name + INFLIGHT_SUFFIX);
      logger().debug({ wal: name, inflight: this.jobs.size }, 'WAL push started');
      // Not awaited before the push: archiveWalFile takes its place in the upload queue at once, so
      // PostgreSQL's own segment is ahead of look-ahead started after it (a write finishing late
      // must not let those take the free slots first).
      const inflightWritten = writeFile(inflight, '');
      try {
        // Taken before the bytes are read: a file rewritten meanwhile no longer matches its marker.
        const identity = fileIdentity(path);
        if (identity === undefined) throw new Error(`${path}: no such file`);
        const pushed = archiveWalFile(target, path, this.gate, { pool: this.compression, index: this.archived, spillDir: this.rt.archiveSpool, slots: this.slotsOf(target), encodes: this.encodes, urgent });
        const [, result] = await Promise.all([inflightWritten, pushed]);
        this.stored.set(name, { identity, result });
        await this.writeMarker(name, identity);
        logger().debug({ wal: name, key: result.key, status: result.status, ms: Math.round(performance.now() - t0), inflight: this.jobs.size }, 'WAL archived');
        return result;
      } finally {
        // After the marker: bin/pgark, seeing neither, asks the daemon (which reports the failure).
        await inflightWritten.catch(() => undefined);
        await unlink(inflight).catch(() => undefined);
      }
    })());
    const job = { name, promise };
    this.jobs.set(name, job);
    promise.then(
      () => this.failedAt.delete(name),
      (err) => {
        this.failedAt.set(name, Date.now());
        this.targets.failed(ref, err);
        logger().warn({ wal: name, err: (err as Error).message }, 'WAL archive failed');
      },
    );
    // A failed upload moves look-ahead on too (past the back-off, a store back up is written to
    // before PostgreSQL's archiver, which waits up to a minute after three failures, calls again),
    // but only while PostgreSQL still asks: see failureRetryWindowMs.
    void promise.then(
      () => {
        this.jobs.delete(name);
        void this.pump(target, dirname(path), ref);
      },
      () => {
        this.jobs.delete(name);
        if (Date.now() - this.lastRequestAt < this.failureRetryWindowMs) void this.pump(target, dirname(path), ref);
      },
    );
    return job;
  }

  private slotsOf(target: WalTarget): TransferSlots {
    let slots = this.slots.get(target);
    if (!slots) this.slots.set(target, (slots = new TransferSlots(target.maxParallel)));
    return slots;
  }

  private async writeMarker(name: string, identity: string): Promise<void> {
    const final = join(this.rt.archiveSpool, name);
    const temp = `${final}.tmp`;
    await writeFile(temp, `${identity}\n`);
    await rename(temp, final);
  }

  /**
   * Keeps the oldest .ready segments not yet stored in progress, in the order PostgreSQL will ask
   * for them: wal.maxParallel uploading and as many more being read and hashed, so each freed
   * upload slot is taken by a push ready to send. While CNPG's empty-archive marker exists, one at
   * a time, so the check sees the archive before our own first upload lands.
   */
  private async pump(target: WalTarget, walDir: string, ref: ConfigRef): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.fill(target, walDir, ref);
      } while (this.pumpAgain);
    } catch (err) {
      logger().warn({ err: (err as Error).message }, 'WAL look-ahead scan failed');
    } finally {
      this.pumping = false;
    }
  }

  private async fill(target: WalTarget, walDir: string, ref: ConfigRef): Promise<void> {
    const limit = (await this.gateOpen(target)) ? 2 * target.maxParallel : 1;
    if (this.jobs.size >= limit) return;
    const now = Date.now();
    const ready = await this.readySegments(walDir);
    let started = 0;
    for (const name of ready) {
      if (this.jobs.size >= limit) break;
      if (this.jobs.has(name)) continue;
      if (now - (this.failedAt.get(name) ?? 0) < LOOKAHEAD_RETRY_MS) continue;
      const path = join(walDir, name);
      if (this.alreadyStored(name, path)) continue;
      this.start(target, path, ref);
      started++;
    }
    logger().debug({ ready: ready.length, started, inflight: this.jobs.size }, 'WAL look-ahead scan');
  }

  private async gateOpen(target: WalTarget): Promise<boolean> {
    if (target.skipEmptyCheck) return true;
    return !(await pathExists(this.gate.markerPath));
  }

  private async readySegments(walDir: string): Promise<string[]> {
    const status = await readdir(join(walDir, 'archive_status')).catch(() => [] as string[]);
    return status
      .filter((f) => f.endsWith('.ready'))
      .map((f) => f.slice(0, -'.ready'.length))
      .sort();
  }

  private storedHere(name: string, path: string): ArchiveResult | undefined {
    const mine = this.stored.get(name);
    return mine && fileIdentity(path) === mine.identity ? mine.result : undefined;
  }

  /** Stored already (by this process or, per its spool marker, by an earlier one), for the very file now at path. */
  private alreadyStored(name: string, path: string): boolean {
    return this.storedHere(name, path) !== undefined || archiveMarkerMatches(join(this.rt.archiveSpool, name), path);
  }

  /**
   * Removes markers of segments PostgreSQL no longer has as .ready: it marked them .done after
   * the launcher answered from the marker, or recycled them. Without this the spool would keep a
   * marker for every segment stored ahead.
   */
  async sweepMarkers(walDir: string): Promise<void> {
    // Spool first: a marker listed now was written for a segment that was .ready before the
    // status listing below, so "not .ready" cannot catch a marker for a segment that only just
    // became .ready (and was stored ahead at once).
    const spool = await readdir(this.rt.archiveSpool).catch(() => [] as string[]);
    const stored = [...this.stored.keys()];
    const ready = new Set(await this.readySegments(walDir));
    for (const name of stored) if (!ready.has(name)) this.stored.delete(name);
    for (const f of spool) {
      // The spool's own files (REQUESTS_TAKEN_FILE) are not per segment.
      if (f.startsWith('.')) continue;
      // A spill file is <name>.<8 hex>.body (archive.ts).
      const suffix = f.endsWith(SPILL_SUFFIX) ? f.slice(f.lastIndexOf('.', f.length - SPILL_SUFFIX.length - 1)) : [INFLIGHT_SUFFIX, REQUEST_SUFFIX, '.tmp'].find((x) => f.endsWith(x));
      const name = suffix ? f.slice(0, -suffix.length) : f;
      if (this.jobs.has(name)) continue;
      // An .inflight or spill file without a job is left over from a daemon that was killed.
      if (suffix === INFLIGHT_SUFFIX || f.endsWith(SPILL_SUFFIX) || !ready.has(name)) await unlink(join(this.rt.archiveSpool, f)).catch(() => undefined);
    }
  }
}

