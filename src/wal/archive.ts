/**
 * Archiving one WAL file in barman-cloud's layout (<server>/wals/<TLI+LOG>/<name>[.ext], .history
 * at the top of wals/), idempotently: a name already stored with the same bytes (under any
 * compression suffix) is success without rewriting; different bytes are an error naming both.
 *
 * A push streams: encodeFile reads the segment in 256 KiB chunks, compresses, encrypts and hashes
 * them (compression on the resident daemon's worker thread when it passes a CompressionPool), writing a
 * transformed body to a spill file beside the archive spool; the upload then streams that file
 * (or the segment itself for 'none', from reused chunks: FileBody) as one PUT with known length and Content-MD5 (S3), staged
 * blocks (Azure) or a durable file write. So a push in flight holds a few chunks, not a segment:
 * the daemon can run wal.maxParallel of them inside a small memory budget. Comparing with an
 * object that is already stored streams both sides through SHA-256 the same way.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { walKey } from '../catalog/layout.js';
import { codecExtension, splitCodecSuffix } from '../codec/types.js';
import { CHUNK, encodeFile, encodingNeedsWorker, FileBody, storedAsIs, type EncodedFile, type EncodeJob } from '../codec/encode-file.js';
import type { CompressionPool } from '../codec/pool.js';
import { count } from '../io/count.js';
import { cryptoHasher, hash } from '../io/hash.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { archivedSystemIdentifier, checkEmptyArchive, emptyArchiveError, findArchivedWal } from './empty-check.js';
import { pathExists } from '../util/fs.js';
import { logger } from '../util/log.js';
import { classifyWalName, parseWalName, type ParsedWalName } from '../pg/wal-names.js';
import { readSegmentHeaderOf } from './segment.js';
import { findStoredWal, type ArchivedWalIndex } from './stored-wal.js';
import type { WalTarget } from './target.js';
import { CHECK_EMPTY_MARKER } from '../util/cnpg.js';

export interface ArchiveResult {
  key: string;
  /** 'stored' = uploaded now; 'exists' = the same bytes were already in the archive. */
  status: 'stored' | 'exists';
  size: number;
}

export class WalConflictError extends PgarkError {}

/** Block size of a WAL push to Azure: four blocks and a commit for a 16 MiB segment, one block held at a time. */
const AZURE_BLOCK = 4 * 1024 * 1024;

/** Size and SHA-256 of a stream's bytes, read in chunks. */
async function digestOf(stages: [Readable, ...NodeJS.ReadWriteStream[]]): Promise<{ size: number; sha256: string }> {
  const digest = hash(cryptoHasher('sha256'));
  const counter = count();
  await pipeline([...stages, digest, counter, new Writable({ write: (_chunk, _enc, cb) => cb() })]);
  return { size: counter.bytes, sha256: digest.digest };
}

/** Compares an archived object with the local file; throws WalConflictError when they differ, else returns the size. */
async function verifyExisting(target: WalTarget, key: string, name: string, localPath: string): Promise<number> {
  // An encrypted object is compared after decryption: an archiver with recipients only (no identity) stops here with a clear error.
  // The codecs' native modules load on first use: a daemon that only pushes never needs a decoder.
  const decode = (await import('../codec/index.js')).decodeStreams(splitCodecSuffix(key), target.age, key);
  const [stored, local] = await Promise.all([
    target.store.get(key).then((body) => digestOf([body, ...decode])),
    digestOf([createReadStream(localPath, { highWaterMark: CHUNK })]),
  ]);
  if (stored.size === local.size && stored.sha256 === local.sha256) return local.size;
  const what = classifyWalName(name) === 'history' ? 'timeline history file' : 'WAL file';
  throw new WalConflictError(
    `${what} ${name} is already archived as ${key} with different content: archive ${stored.size} bytes sha256 ${stored.sha256}, ` +
      `local ${localPath} ${local.size} bytes sha256 ${local.sha256}`,
    1,
    'another cluster may be archiving into the same serverName; give each cluster its own serverName',
  );
}

/**
 * Runs the "Expected empty archive" check once per process and data directory before the first
 * upload. With CNPG's marker file, any WAL on the same or a higher timeline refuses. Without it
 * (a cluster not set up by CNPG), pgark refuses only WAL written by another system: it reads the
 * system identifier of the newest archived segment and compares it with this segment's header.
 * Concurrent callers share one check.
 */
export class EmptyArchiveGate {
  private readonly passed = new WeakMap<WalTarget, Promise<void>>();

  constructor(private readonly pgdata: string) {}

  get markerPath(): string {
    return join(this.pgdata, CHECK_EMPTY_MARKER);
  }

  /** Runs the check for the WAL file at path unless it passed already for this target (only then is the file's header read). */
  async before(target: WalTarget, wal: ParsedWalName, path: string): Promise<void> {
    if (target.skipEmptyCheck) return;
    let passed = this.passed.get(target);
    if (!passed) {
      passed = this.check(target, wal, path);
      this.passed.set(target, passed);
      passed.catch(() => this.passed.delete(target));
    }
    return passed;
  }

  private async check(target: WalTarget, wal: ParsedWalName, path: string): Promise<void> {
    const header = wal.kind === 'segment' || wal.kind === 'partial' ? await readSegmentHeaderOf(path) : undefined;
    if (await pathExists(this.markerPath)) {
      await checkEmptyArchive(target.store, target.serverName, { timeline: wal.timeline, systemIdentifier: header?.systemIdentifier, serverNameField: target.serverNameField });
      return;
    }
    if (!header) return;
    const report = await findArchivedWal(target.store, target.serverName, { timeline: wal.timeline });
    if (!report.newestSegmentKey) return;
    const archived = await archivedSystemIdentifier(target.store, report.newestSegmentKey, target.age);
    if (archived && archived !== header.systemIdentifier) {
      throw emptyArchiveError(target.store, target.serverName, report, { timeline: wal.timeline, systemIdentifier: header.systemIdentifier, serverNameField: target.serverNameField }, archived);
    }
  }

  /** After a successful upload the check is done for good (CNPG removes the marker the same way). */
  async after(): Promise<void> {
    await unlink(this.markerPath).catch(() => undefined);
  }
}

/**
 * Starts encoding the file for the target: on the pool's worker when there is real work, else here,
 * compressing (gzip) only once one of `encodes` is free.
 */
function encodeFor(target: WalTarget, path: string, spillDir: string, { pool, encodes, urgent }: ArchiveOptions): Promise<EncodedFile> {
  const job: EncodeJob = {
    codec: target.compression,
    path,
    // S3 takes a streamed body only with its length and Content-MD5 known up front.
    md5: target.store.provider === 's3',
    age: target.age,
    spillTo: join(spillDir, `${basename(path)}.${randomBytes(4).toString('hex')}${SPILL_SUFFIX}`),
  };
  // A plain file needs at most an MD5 pass, a fraction of a millisecond per chunk, and Node's gzip
  // deflates on libuv's thread pool by itself: here, rather than on a worker isolate whose own
  // garbage costs more memory (and collections) than it saves.
  if (pool && encodingNeedsWorker(job.codec, job.age)) return pool.encodeFile(job);
  if (!encodes || storedAsIs(job.codec, job.age)) return encodeFile(job);
  return encodes.run(() => encodeFile(job), urgent);
}

/** The spill files of pushes in progress end with this (ArchiveService sweeps leftovers). */
export const SPILL_SUFFIX = '.body';

export interface ArchiveOptions {
  /** Reads, compresses and hashes on worker threads (the resident daemon). */
  pool?: CompressionPool;
  /** Where compressed or encrypted bodies are spilled while they upload (default: the temp directory). */
  spillDir?: string;
  /** Answers "already archived?" from folder listings instead of a LIST per file (the resident daemon). */
  index?: ArchivedWalIndex;
  /**
   * Transfers shared with other pushes (the resident daemon): the lookup and upload wait for a
   * slot, the encoding does not, so a push prepared ahead starts uploading the moment one frees.
   */
  slots?: TransferSlots;
  /** Served before pushes that are only looked ahead (PostgreSQL is waiting for this one). */
  urgent?: boolean;
  /**
   * Compressions on this thread shared with other pushes (gzip in the resident daemon): a push
   * opens its file only once one is free, so a push waiting for one holds no chunks and no deflate state.
   */
  encodes?: TransferSlots;
}

/**
 * At most `size` transfers at once, started in the order they asked (look-ahead asks in WAL
 * order), an urgent one first. Without it a push would start hashing only when an upload slot
 * freed, and the pushes of a batch, which finish together, would all hash while the store idled.
 */
export class TransferSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {}

  async run<T>(fn: () => Promise<T>, urgent = false): Promise<T> {
    if (this.running < this.size) this.running++;
    // The slot is handed over by release(): running stays counted.
    else await new Promise<void>((resolve) => (urgent ? this.waiting.unshift(resolve) : this.waiting.push(resolve)));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** Archives the WAL file at `path`. Resolves only once the object is durably stored (or already was). */
export async function archiveWalFile(target: WalTarget, path: string, gate: EmptyArchiveGate, opts: ArchiveOptions = {}): Promise<ArchiveResult> {
  const { index, slots, urgent, spillDir = tmpdir() } = opts;
  const name = basename(path);
  if (!classifyWalName(name)) throw new UserError(`"${name}" is not a WAL file name`, 'archive_command must pass %p (pg_wal/<WAL file name>)');
  const wal = parseWalName(name);
  // Encoding starts now, while the checks below wait on the store.
  const prepared = encodeFor(target, path, spillDir, opts);
  prepared.catch(() => undefined);
  const t0 = performance.now();
  const push = () => {
    const slotWaitMs = Math.round(performance.now() - t0);
    return pushUnlessStored(target, path, name, wal, gate, index, prepared, slotWaitMs);
  };
  try {
    return await (slots ? slots.run(push, urgent) : push());
  } finally {
    // Stored, found stored already, or failed: the spill file has served either way.
    const encoded = await prepared.catch(() => undefined);
    if (encoded && encoded.bodyPath !== path) await unlink(encoded.bodyPath).catch(() => undefined);
  }
}

async function pushUnlessStored(
  target: WalTarget,
  path: string,
  name: string,
  wal: ParsedWalName,
  gate: EmptyArchiveGate,
  index: ArchivedWalIndex | undefined,
  prepared: Promise<EncodedFile>,
  slotWaitMs: number,
): Promise<ArchiveResult> {
  await gate.before(target, wal, path);
  const { store, serverName } = target;
  const existing = await (index ? index.find(store, serverName, name) : findStoredWal(store, serverName, name));
  if (existing) {
    const size = await verifyExisting(target, existing.key, name, path).catch((err: unknown) => {
      // The index listed it, but it is gone since (deleted by hand or by another tool): store it again.
      if (!(err instanceof NotFoundError) || !index) throw err;
      index.forget(store, existing.key);
      return undefined;
    });
    if (size !== undefined) {
      await gate.after();
      return { key: existing.key, status: 'exists', size };
    }
  }
  const key = walKey(serverName, name, codecExtension(target.compression, target.age !== undefined));
  const t0 = performance.now();
  const { bodyPath, bodyLength, md5, size } = await prepared;
  const t1 = performance.now();
  const tags = wal.kind === 'history' ? (target.historyTags ?? target.tags) : target.tags;
  const open = () => new FileBody(bodyPath);
  const put = await store.put(key, open(), {
    ifAbsent: store.limits.conditionalCreate,
    tags,
    encryption: target.encryption,
    contentType: 'application/octet-stream',
    contentMD5: md5,
    contentLength: bodyLength,
    reopen: open,
    // Azure stages the stream as blocks of this size, one at a time.
    partSize: AZURE_BLOCK,
    queueSize: 1,
  });
  if (put.status === 'exists') {
    // Someone stored the same name between our lookup and our write: same rule as above.
    await verifyExisting(target, key, name, path);
    await gate.after();
    return { key, status: 'exists', size };
  }
  // Where a push's time went, for the drain's timeline at debug level.
  logger().debug({ wal: name, slotWaitMs, encodeWaitMs: Math.round(t1 - t0), putMs: Math.round(performance.now() - t1) }, 'WAL push phases');
  index?.noteStored(store, key);
  await gate.after();
  return { key, status: 'stored', size };
}
