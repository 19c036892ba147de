/**
 * One `pgark verify` run: chooses backups from the catalog (one, all, or with --since-last those
 * newer than the last fully successful run), verifies each (backup.ts) and, with --wal, their WAL
 * chain (wal-chain.ts), then stores the result under <server>/pgark/verify/ with the catalog's
 * write options (tags, encryption) so the next --since-last run knows where to continue.
 *
 * Memory is bounded by a formula, not by the backup's size:
 *   jobs x (3 x 64 KiB stream buffers + one codec window: <= 4 MiB for lz4, 8 MiB for zstd's
 *           default window, 64 KiB snappy, 900 KiB bzip2, 32 KiB gzip)
 *   + one backup_manifest text (about 150 bytes per file of the backup)
 *   + 100 bytes per file of the backup (its size and CRC-32C until the manifest is compared)
 *   + 100 bytes per WAL segment of the chain (its key, from the listing).
 * Objects are never buffered whole: each streams from the store through its decoder into the
 * tar parser or the WAL page check, and only headers are kept.
 */
import { PassThrough, type Transform } from 'node:stream';
import type { BackupInfo } from '../catalog/backup-info.js';
import { backupInfoKey } from '../catalog/layout.js';
import { findBackup, listBackups, type Catalog, type CatalogWriteOptions } from '../catalog/catalog.js';
import { chainOf, incrementalPrefix, isIncremental, listIncrementals, type IncrementalListing } from '../catalog/incremental.js';
import type { AgeKeys } from '../codec/index.js';
import { parseLsn } from '../pg/lsn.js';
import type { ObjectStore } from '../storage/types.js';
import { NotFoundError, UserError } from '../util/errors.js';
import { verifyBackup } from './backup.js';
import { VERIFY_RESULT_VERSION, type BackupResult, type Problem, type VerifyResult } from './report.js';
import { lastSuccessfulRun, storeVerifyResult, verifyResultKey } from './results.js';
import { verifyWalChain, type ChainBackup } from './wal-chain.js';

export interface VerifyProgress {
  /** A byte counter to put in each object's pipeline. */
  counter(): Transform;
  stop(): void;
}

const NO_PROGRESS: VerifyProgress = { counter: () => new PassThrough(), stop: () => undefined };

export interface VerifyRequest {
  store: ObjectStore;
  serverName: string;
  write: CatalogWriteOptions;
  /** A backup id, name, latest/oldest..., or 'all'. Undefined: latest, or with sinceLast every newer backup. */
  backup?: string;
  wal: boolean;
  sinceLast: boolean;
  jobs: number;
  /** Starts the progress display once the bytes to read are known (WAL comes on top: an estimate then). */
  progress?: (totalBytes: number, estimate: boolean) => VerifyProgress;
  now?: () => Date;
  /** The store's age keys: encrypted tars, segments and history files are read with them. */
  age?: AgeKeys;
}

const byId = (a: BackupInfo, b: BackupInfo) => (a.backup_id < b.backup_id ? -1 : a.backup_id > b.backup_id ? 1 : 0);

/** The full backups' catalog and the incrementals: verify chooses among both, and checks an incremental with its chain. */
interface Backups {
  catalog: Catalog;
  incrementals: IncrementalListing;
  all: BackupInfo[];
}

function chooseBackups(done: BackupInfo[], backups: Backups, req: VerifyRequest, since: VerifyResult | undefined): BackupInfo[] {
  if (req.sinceLast && since) {
    const after = since.coverage.newestBackupId;
    return done.filter((b) => after === null || b.backup_id > after);
  }
  const ref = req.backup ?? 'latest';
  if (ref === 'all') return done;
  try {
    return [findBackup({ serverName: req.serverName, backups: backups.all }, ref)];
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(err.message, 'pgark backup list shows the backups; --backup takes an id, a name, latest, oldest or all');
    throw err;
  }
}

function chainBackup(serverName: string, info: BackupInfo): ChainBackup | undefined {
  if (!info.begin_xlog || !info.end_xlog || !info.timeline) return undefined;
  try {
    return {
      backupId: info.backup_id,
      serverName,
      timeline: info.timeline,
      beginLsn: parseLsn(info.begin_xlog),
      endLsn: parseLsn(info.end_xlog),
      endTime: info.end_time ? info.end_time.toDate().toISOString() : null,
      systemId: info.systemid,
      major: info.version ? Math.floor(info.version / 10000) : undefined,
      segmentSize: info.xlog_segment_size,
    };
  } catch {
    // backup.info's own check has reported the bad LSN.
    return undefined;
  }
}

/** Per timeline, the later of two last segments (names of one timeline sort by position). */
function mergeLast(a: Record<string, string>, b: Record<string, string>): Record<string, string> {
  const out = { ...a };
  for (const [tl, name] of Object.entries(b)) if (!out[tl] || name > out[tl]) out[tl] = name;
  return out;
}

export async function runVerify(req: VerifyRequest): Promise<VerifyResult> {
  const now = req.now ?? (() => new Date());
  const startedAt = now();
  const [catalog, incrementals] = await Promise.all([listBackups(req.store, req.serverName), listIncrementals(req.store, req.serverName)]);
  const backups: Backups = { catalog, incrementals, all: [...catalog.backups, ...incrementals.backups].sort(byId) };
  const done = backups.all.filter((b) => b.status === 'DONE');
  const since = req.sinceLast ? await lastSuccessfulRun(req.store, req.serverName) : undefined;
  const chosen = chooseBackups(done, backups, req, since?.result);

  const toRead = chosen.flatMap((b) => listedObjects(backups, b.backup_id)).reduce((n, o) => n + o.size, 0);
  const progress = req.progress?.(toRead, req.wal) ?? NO_PROGRESS;
  try {
    return await verifyChosen(req, backups, done, chosen, since, progress, startedAt, now);
  } finally {
    progress.stop();
  }
}

function listedObjects(backups: Backups, id: string) {
  return backups.catalog.objects.get(id) ?? backups.incrementals.objects.get(id) ?? [];
}

function chainOrError(info: BackupInfo, all: BackupInfo[]): BackupInfo[] | Error {
  try {
    return chainOf(info.backup_id, all);
  } catch (err) {
    return err as Error;
  }
}

async function verifyChosen(
  req: VerifyRequest,
  backupsRead: Backups,
  done: BackupInfo[],
  chosen: BackupInfo[],
  since: { key: string; result: VerifyResult } | undefined,
  progress: VerifyProgress,
  startedAt: Date,
  now: () => Date,
): Promise<VerifyResult> {
  const counter = () => progress.counter();
  const problems: Problem[] = [];
  if (req.backup === 'all' || req.sinceLast) {
    for (const u of backupsRead.catalog.unreadable) problems.push({ key: backupInfoKey(req.serverName, u.backupId), what: `backup.info cannot be read: ${u.error}` });
    for (const u of backupsRead.incrementals.unreadable) problems.push({ key: `${incrementalPrefix(req.serverName, u.backupId)}backup.info`, what: `backup.info cannot be read: ${u.error}` });
  }
  const backups: BackupResult[] = [];
  let objectsRead = 0;
  let bytesRead = 0;
  for (const info of chosen) {
    const chain = isIncremental(info) ? chainOrError(info, backupsRead.all) : undefined;
    const r = await verifyBackup(req.store, req.serverName, info, { jobs: req.jobs, counter, listed: listedObjects(backupsRead, info.backup_id), chain, age: req.age });
    backups.push(r);
    problems.push(...r.problems);
    objectsRead += r.objects.length;
    bytesRead += r.objects.reduce((n, o) => n + o.size, 0);
  }

  let wal: VerifyResult['wal'] = null;
  let lastSegments = since?.result.coverage.lastSegments ?? {};
  if (req.wal) {
    // --since-last: the chain also starts at the newest backup the last run covered, so the WAL
    // written between that run and the next new backup is read too; with no backup at all chosen,
    // new WAL still hangs off the newest one.
    const covered = since ? done.filter((b) => b.backup_id <= (since.result.coverage.newestBackupId ?? '')).slice(-1) : [];
    const anchors = [...covered, ...(chosen.length ? chosen : done.slice(-1))].filter((b, i, all) => all.indexOf(b) === i).map((b) => chainBackup(req.serverName, b)).filter((b): b is ChainBackup => b !== undefined);
    if (anchors.length === 0) {
      throw new UserError(`server "${req.serverName}" has no DONE backup with begin and end LSNs to start the WAL chain from`, 'take a backup first (pgark backup), or verify without --wal');
    }
    const chain = await verifyWalChain(req.store, anchors, { jobs: req.jobs, counter, readAfter: since?.result.coverage.lastSegments, age: req.age });
    const { objectsRead: segRead, bytesRead: segBytes, lastSegments: chainLast, ...walResult } = chain;
    wal = walResult;
    objectsRead += segRead;
    bytesRead += segBytes;
    problems.push(...chain.problems);
    lastSegments = mergeLast(lastSegments, chainLast);
  }

  const ids = [...chosen.map((b) => b.backup_id), since?.result.coverage.newestBackupId ?? ''].filter(Boolean).sort();
  const result: VerifyResult = {
    version: VERIFY_RESULT_VERSION,
    serverName: req.serverName,
    store: req.store.displayUrl,
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    ok: problems.length === 0,
    request: { backup: req.sinceLast && !req.backup ? 'since-last' : (req.backup ?? 'latest'), wal: req.wal, sinceLast: req.sinceLast, jobs: req.jobs },
    since: since ? { key: since.key, newestBackupId: since.result.coverage.newestBackupId, lastSegments: since.result.coverage.lastSegments } : null,
    objectsRead,
    bytesRead,
    backups,
    wal,
    problems,
    coverage: { newestBackupId: ids.at(-1) ?? null, lastSegments },
  };
  const key = verifyResultKey(req.serverName, startedAt);
  try {
    await storeVerifyResult(req.store, key, result, req.write);
    result.storedAt = key;
  } catch (err) {
    result.storeError = (err as Error).message;
  }
  return result;
}
