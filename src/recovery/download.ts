/**
 * Downloads and extracts a base backup: every tar (data, data_0001..., each tablespace and its
 * parts) streams from the store through its decompressor into the tar extractor, `jobs` tars at
 * a time. barman-cloud makes each part a complete tar of distinct files, so parts extract
 * concurrently. Memory is bounded per job by the stream buffers (about 3 x 64 KiB) plus one codec
 * block (64 KiB snappy, 4 MiB lz4, the zlib/zstd window), i.e. roughly jobs x 5 MiB at most; zstd and
 * snappy decode on a worker thread, whose share docs/recovery.md ("Download") gives.
 * Afterwards: pg_tblspc/<oid> links to the tablespace locations, pg_wal created, mode 0700, the
 * files handed to the server's OS user when running as root, every file checked against the
 * backup_manifest, and the directories fsynced once every file's fsync has completed (large files
 * are fsynced while the download goes on, small ones together at the end).
 * Each object's bytes are hashed as they arrive and checked against the SHA-256 backup.info
 * recorded for it (verify.ts) as soon as its tar is extracted.
 * `jobs` counts connections: with fewer objects than jobs (a barman-cloud backup is often one
 * data.tar), an object whose reader waits on its one connection is read on by the spare ones too,
 * in ranges of RANGE_BYTES (storage/ranged.ts), which adds at most jobs x RANGE_BYTES to the memory above.
 */
import { chmodSync, existsSync, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { CorruptDataError, decodeStreams, type AgeKeys } from '../codec/index.js';
import { cryptoHasher, hash } from '../io/hash.js';
import { ProgressDisplay } from '../io/progress.js';
import { chownTree, type RunAs } from '../pg/local-server.js';
import type { ObjectStore } from '../storage/types.js';
import { rangedRead } from '../storage/ranged.js';
import { setting } from '../util/options.js';
import type { BackupObject } from './catalog-view.js';
import { extractTar, type WrittenFile } from './extract.js';
import { formatBytes } from '../util/format.js';
import type { Progress } from './progress.js';
import type { RecoveryBackup } from './select-backup.js';
import { DamagedObjectError, expectedDigests, verifyRestoredFiles, type ObjectVerification, type Verification } from './verify.js';
import { PgarkError } from '../util/errors.js';
import { removeExtras, type DeltaStats } from './delta.js';
import { checksumFile } from './chain.js';
import { extractChanged, usableIndex } from './delta-ranged.js';

export interface DownloadResult {
  bytes: number;
  files: number;
  seconds: number;
  verification: Verification;
  objects: ObjectVerification;
  /** --delta's counts. */
  delta?: DeltaStats;
}

export interface DownloadOptions {
  pgdata: string;
  jobs: number;
  progress: Progress;
  who: RunAs | undefined;
  /** --delta: compare with the files in pgdata, write what differs, remove what the backup lacks. */
  delta?: DeltaStats;
  /** Keys for age-encrypted objects (.age). */
  age?: AgeKeys;
}

/**
 * Bytes per range when an object is read over several connections. Over the shaped store (25 ms a
 * round trip, 40 MB/s a connection) a 4 MiB range spends about a fifth of its time waiting for its
 * first byte; larger ranges cost memory (jobs x RANGE_BYTES) for little more (docs/tuning.md).
 */
const RANGE_BYTES = 4 * 1024 * 1024;

/** The object's bytes: one GET, which an object large enough to share may add up to `lanes` - 1 more to. */
async function objectBytes(store: ObjectStore, o: BackupObject, lanes: number, progress: Progress): Promise<Readable> {
  const partBytes = setting('restoreRangeBytes') ?? RANGE_BYTES;
  if (lanes < 2 || store.provider === 'file' || o.size < 2 * partBytes) return store.get(o.key);
  const onSplit = (at: number) => progress.step(`${o.name}: one connection was the limit; reading on from ${formatBytes(at)} over ${lanes}`);
  return rangedRead(store, o.key, o.size, { lanes, partBytes, onSplit });
}

/** Runs `work` over `items` with at most `jobs` in flight; the first failure stops new work and is thrown. */
async function pool<T>(items: T[], jobs: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

/** How many fsyncs are in flight at once: enough for the kernel to batch them, few open descriptors. */
const SYNC_WIDTH = 16;

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs files or directories (a directory's fsync makes the names in it durable). */
export async function syncPaths(paths: Iterable<string>): Promise<void> {
  await pool([...new Set(paths)], SYNC_WIDTH, fsyncPath);
}

/**
 * Files from this size on are fsynced as soon as they are closed, while extraction goes on, so
 * the disk writes most of the bytes back during the download rather than after it. Smaller files
 * (most of a data directory's count, little of its size) wait for drain(): each fsync on ext4 is
 * a journal commit, and a thousand of them during extraction held up the file creations behind
 * them, where at the end they run side by side and share commits.
 */
const EARLY_SYNC_BYTES = 1024 * 1024;

/**
 * fsyncs the extracted files. Early ones run one at a time until drain(): an fsync holds one of
 * libuv's four pool threads for as long as the disk takes, and zlib inflates on that pool.
 * drain() syncs the rest SYNC_WIDTH at a time, waits for all and throws the first failure, so
 * nothing is reported restored before it is durable. Memory: one path per file not yet synced.
 */
class BackgroundSync {
  private readonly queue: string[] = [];
  private readonly deferred: string[] = [];
  private head = 0;
  private running = 0;
  private width = 1;
  private failed: unknown;
  private idle: (() => void) | undefined;

  add(path: string, size: number): void {
    if (size < EARLY_SYNC_BYTES && this.width === 1) {
      this.deferred.push(path);
      return;
    }
    this.queue.push(path);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.width && this.head < this.queue.length) {
      const path = this.queue[this.head++];
      this.running++;
      fsyncPath(path)
        .catch((err: unknown) => {
          this.failed ??= err;
        })
        .finally(() => {
          this.running--;
          this.pump();
          if (this.running === 0 && this.head === this.queue.length) this.idle?.();
        });
    }
  }

  async drain(): Promise<void> {
    this.width = SYNC_WIDTH;
    this.queue.push(...this.deferred.splice(0));
    this.pump();
    if (this.running > 0 || this.head < this.queue.length) await new Promise<void>((r) => (this.idle = r));
    if (this.failed !== undefined) throw this.failed;
  }
}

export async function downloadBackup(store: ObjectStore, backup: RecoveryBackup, objects: BackupObject[], opts: DownloadOptions): Promise<DownloadResult> {
  const pgdata = resolve(opts.pgdata);
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  const locations = new Map(backup.tablespaces.map((t) => [String(t.oid), resolve(t.location)]));
  for (const loc of locations.values()) mkdirSync(loc, { recursive: true, mode: 0o700 });

  const total = objects.reduce((n, o) => n + o.size, 0);
  const started = Date.now();
  let files = 0;
  const written = new Map<string, WrittenFile>();
  const directories = new Set<string>();
  const placed = new Map<string, string>();
  // Off a terminal each report is a step line, as the other steps of a restore.
  const display = new ProgressDisplay({
    label: 'downloading',
    total,
    log: (p) => opts.progress.step(`downloaded ${formatBytes(p.done)} of ${formatBytes(p.total)} (${p.total ? Math.floor((p.done / p.total) * 100) : 100}%) at ${formatBytes(p.bytesPerSecond)}/s`),
  });
  const digests = expectedDigests(backup.objectSha256, objects);
  const fileSync = new BackgroundSync();
  // The connections the objects do not use (fewer objects than jobs) read ahead within them.
  const lanes = Math.max(1, Math.floor(opts.jobs / Math.max(1, Math.min(opts.jobs, objects.length))));
  try {
    await pool(objects, opts.jobs, async (o) => {
      const root = o.base === 'data' ? pgdata : locations.get(o.base)!;
      const want = digests?.get(o.key);
      // Members placed block by block (an incremental chain) are written by the streamed path only.
      const indexed = opts.delta && !o.place ? await usableIndex(store, o, want) : undefined;
      if (indexed && 'fallback' in indexed) opts.delta!.streamed.push(indexed.fallback);
      const sha = hash(cryptoHasher('sha256'));
      const onFile = (path: string, size: number) => fileSync.add(path, size);
      const extracting =
        indexed && 'index' in indexed
          ? extractChanged(store, o, indexed.index, root, { delta: opts.delta!, accept: o.accept, onFile, counter: () => display.filter(), age: opts.age })
          : extractTar([await objectBytes(store, o, lanes, opts.progress), sha, display.filter(), ...decodeStreams(o, opts.age, o.key, { offThread: true })], root, o.key, { accept: o.accept, place: o.place, delta: opts.delta, onFile });
      const stats = await extracting.catch((err: unknown) => {
        throw namedIfDamaged(o.key, err);
      });
      if (indexed && 'index' in indexed) {
        opts.delta!.rangedObjects++;
        opts.delta!.indexBytes += indexed.bytes;
      } else if (want !== undefined && sha.digest !== want) {
        throw new DamagedObjectError(o.key, `its SHA-256 is ${sha.digest}, backup.info recorded ${want} when it was stored`);
      }
      files += stats.files;
      // backup_manifest names tablespace files as PGDATA would reach them.
      const prefix = o.base === 'data' ? '' : `pg_tblspc/${o.base}/`;
      for (const [path, f] of stats.written) written.set(prefix + path, f);
      for (const d of stats.directories) directories.add(d);
      for (const path of stats.placed) placed.set(prefix + path, join(root, path));
    });
    // A file several tars wrote blocks of is checked as reassembled, read back once every tar is in.
    await pool([...placed], opts.jobs, async ([path, abs]) => {
      const file = await checksumFile(abs);
      written.set(path, file);
      fileSync.add(abs, file.size);
    });
  } catch (err) {
    // No fsync may still run on files the caller is about to remove.
    await fileSync.drain().catch(() => undefined);
    throw err;
  } finally {
    display.stop();
  }
  if (opts.delta) removeExtras(realpathSync(pgdata), new Set(written.keys()), directories, opts.delta);
  const verification = verifyRestoredFiles(pgdata, written);

  const tblspc = join(pgdata, 'pg_tblspc');
  mkdirSync(tblspc, { recursive: true, mode: 0o700 });
  for (const [oid, loc] of locations) {
    if (!existsSync(join(tblspc, oid))) symlinkSync(loc, join(tblspc, oid));
  }
  const walDir = join(pgdata, (backup.version ?? 100000) < 100000 ? 'pg_xlog' : 'pg_wal');
  mkdirSync(join(walDir, 'archive_status'), { recursive: true, mode: 0o700 });
  chmodSync(pgdata, 0o700);
  chownTree(pgdata, opts.who);
  for (const loc of locations.values()) chownTree(loc, opts.who);
  const roots = [pgdata, ...locations.values()];
  await fileSync.drain();
  await syncPaths([...directories, tblspc, walDir, join(walDir, 'archive_status'), ...roots, ...roots.map((r) => dirname(r))]);
  const objectCheck: ObjectVerification = digests
    ? { digests: true, objects: digests.size - (opts.delta?.rangedObjects ?? 0) }
    : { digests: false, reason: 'backup.info records no SHA-256 of the stored objects (written by barman-cloud or an older pgark)' };
  return { bytes: display.snapshot().done, files, seconds: (Date.now() - started) / 1000, verification, objects: objectCheck };
}

/**
 * A codec that cannot decode the object, or a tar that cannot be parsed (tar-stream's errors are
 * plain Errors without a code), is a damaged object: the error then names it. Anything else (a
 * refused entry, the disk, the network) is passed on as it is.
 */
function namedIfDamaged(key: string, err: unknown): unknown {
  if (err instanceof CorruptDataError) return new DamagedObjectError(key, err.message);
  if (err instanceof Error && !(err instanceof PgarkError) && (err as NodeJS.ErrnoException).code === undefined) return new DamagedObjectError(key, err.message);
  return err;
}
