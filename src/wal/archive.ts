/**
 * Archiving one WAL file in barman-cloud's layout (<server>/wals/<TLI+LOG>/<name>[.ext], .history
 * at the top of wals/), idempotently: a name already stored with the same bytes (under any
 * compression suffix) is success without rewriting; different bytes are an error naming both.
 *
 * The resident daemon passes a CompressionPool: reading, compression and the Content-MD5 hash then
 * run on worker threads, off the event loop that carries every upload in flight, and the daemon's
 * own heap holds only compressed bodies: at most maxParallel of them, plus one reused segment-sized
 * buffer per worker. Without a pool (in-process fallback) a call holds the file and its
 * compressed copy.
 */
import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { walKey } from '../catalog/layout.js';
import { codecExtension, compressBuffer, decodeBuffer, encryptBuffer, splitCodecSuffix, type AgeKeys } from '../codec/index.js';
import type { CompressedFile, CompressionPool } from '../codec/pool.js';
import type { CodecName } from '../codec/types.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { archivedSystemIdentifier, checkEmptyArchive, emptyArchiveError, findArchivedWal } from './empty-check.js';
import { pathExists } from '../util/fs.js';
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

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Compares an archived object with the local file; throws WalConflictError when they differ, else returns the size. */
async function verifyExisting(target: WalTarget, key: string, name: string, localPath: string): Promise<number> {
  // An encrypted object is compared after decryption: an archiver with recipients only (no identity) stops here with a clear error.
  const stored = await decodeBuffer(splitCodecSuffix(key), await target.store.getBuffer(key), target.age, key);
  const data = await readFile(localPath);
  if (stored.equals(data)) return data.length;
  const what = classifyWalName(name) === 'history' ? 'timeline history file' : 'WAL file';
  throw new WalConflictError(
    `${what} ${name} is already archived as ${key} with different content: archive ${stored.length} bytes sha256 ${sha256(stored)}, ` +
      `local ${localPath} ${data.length} bytes sha256 ${sha256(data)}`,
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

/** Reads, compresses and encrypts in this thread (the in-process fallback has no pool); the store hashes the body if it needs to. */
async function compressHere(codec: CodecName, path: string, age: AgeKeys | undefined): Promise<CompressedFile> {
  const data = await readFile(path);
  // 'none' stores the file's own buffer: no second copy of the segment in memory.
  const compressed = codec === 'none' ? data : await compressBuffer(codec, data);
  return { body: age ? await encryptBuffer(compressed, age) : compressed, size: data.length };
}

export interface ArchiveOptions {
  /** Reads, compresses and hashes on worker threads (the resident daemon). */
  pool?: CompressionPool;
  /** Answers "already archived?" from folder listings instead of a LIST per file (the resident daemon). */
  index?: ArchivedWalIndex;
}

/** Archives the WAL file at `path`. Resolves only once the object is durably stored (or already was). */
export async function archiveWalFile(target: WalTarget, path: string, gate: EmptyArchiveGate, { pool, index }: ArchiveOptions = {}): Promise<ArchiveResult> {
  const name = basename(path);
  if (!classifyWalName(name)) throw new UserError(`"${name}" is not a WAL file name`, 'archive_command must pass %p (pg_wal/<WAL file name>)');
  const wal = parseWalName(name);
  // A pool starts compressing now, while the checks below wait on the store.
  const prepared = pool?.compressFile(target.compression, path, { md5: target.store.provider === 's3', age: target.age });
  prepared?.catch(() => undefined);
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
  const { body, md5, size } = await (prepared ?? compressHere(target.compression, path, target.age));
  const tags = wal.kind === 'history' ? (target.historyTags ?? target.tags) : target.tags;
  let put;
  try {
    put = await store.put(key, body, { ifAbsent: store.limits.conditionalCreate, tags, encryption: target.encryption, contentType: 'application/octet-stream', contentMD5: md5 });
  } finally {
    // The store is done with the body, stored or not.
    if (pool && target.compression === 'none' && !target.age) pool.recycle(body);
  }
  if (put.status === 'exists') {
    // Someone stored the same name between our lookup and our write: same rule as above.
    await verifyExisting(target, key, name, path);
    await gate.after();
    return { key, status: 'exists', size };
  }
  index?.noteStored(store, key);
  await gate.after();
  return { key, status: 'stored', size };
}
