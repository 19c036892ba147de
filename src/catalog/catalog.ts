/**
 * The backup catalog of one server in an object store: what barman-cloud's CloudBackupCatalog
 * sees (../shared/reference/cnpg-barman-cloud.md section 3.6), plus what pgark needs on top
 * (object sizes, keep annotations, directories left by interrupted uploads).
 *
 * base/ is listed recursively rather than one level with a delimiter as barman does: the same
 * listing gives every backup id, which ones have a backup.info, their keep annotation and the
 * size of every object (bytes a deletion frees), for one paginated listing instead of a request
 * per backup.
 *
 * A directory without backup.info is either a backup still running, when it holds a live claim
 * (./claims.ts: a claim refreshed within its stale period), or an incomplete one left by
 * a backup that died. barman lists neither; pgark refuses to delete a running one.
 */
import { BACKUP_ID_RE, backupInfoKey, backupPrefix, basePrefix } from './layout.js';
import { emptyBackupInfo, parseBackupInfo, serializeBackupInfo, type BackupInfo } from './backup-info.js';
import { PyDateTime } from './pytime.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../storage/types.js';
import type { BarmanObjectStoreConfiguration } from '../config/types.js';
import { StorageError } from '../storage/errors.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { CLAIM_STALE_PERIODS, claimState, isClaimKey, type ClaimState } from './claims.js';

export type KeepTarget = 'full' | 'standalone';

export interface UnreadableBackup {
  backupId: string;
  error: string;
}

/** A backup in progress: a directory without backup.info whose claim is still refreshed. */
export interface RunningBackup {
  backupId: string;
  claim: ClaimState;
}

export interface Catalog {
  serverName: string;
  /** Readable backups of every status, sorted by backup_id (oldest first). */
  backups: BackupInfo[];
  /** Backups whose backup.info exists but cannot be read or parsed. */
  unreadable: UnreadableBackup[];
  /** Directories under base/ with objects but no backup.info (interrupted uploads); barman ignores them. */
  incomplete: string[];
  /** Directories under base/ without backup.info whose claim is live: barman's STARTED. */
  running: RunningBackup[];
  /** Every object under base/<id>/ (backup.info included), by backup id. */
  objects: Map<string, ObjectInfo[]>;
  /** barman-cloud-backup-keep annotations, by backup id. */
  keep: Map<string, KeepTarget>;
}

/** Reads at most this many backup.info objects at once. */
const READ_CONCURRENCY = 8;

/** barman-cloud-backup-keep's annotation, below the backup's folder; its content is the target. */
export const KEEP_ANNOTATION = 'annotations/keep';

/** Runs `fn` over `items` with at most `limit` calls in flight, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Errors that say the store as a whole is unusable: a listing built on them would lie. */
function isStoreWide(err: unknown): boolean {
  return err instanceof StorageError && (err.kind === 'unreachable' || err.kind === 'not-found-bucket');
}

/** A small object's text, or undefined when it does not exist. */
export async function readText(store: ObjectStore, key: string): Promise<string | undefined> {
  try {
    return (await store.getBuffer(key)).toString('utf8');
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** The live claim among `objects` (a directory without backup.info), if any; claims are read at once. */
async function liveClaim(store: ObjectStore, objects: ObjectInfo[], now: Date): Promise<ClaimState | undefined> {
  const claims = objects.filter((o) => isClaimKey(o.key));
  const states = await Promise.all(claims.map(async (o) => claimState(await readText(store, o.key), o.lastModified, now)));
  return states.find((c) => c.live);
}

/** The objects under `prefix` grouped by the backup ID that is the first component of their key below it. */
export async function objectsByBackupId(store: ObjectStore, prefix: string): Promise<Map<string, ObjectInfo[]>> {
  const objects = new Map<string, ObjectInfo[]>();
  for await (const entry of store.list(prefix)) {
    if (!entry.object) continue;
    const rest = entry.object.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue;
    const id = rest.slice(0, slash);
    if (!objects.has(id)) objects.set(id, []);
    objects.get(id)!.push(entry.object);
  }
  return objects;
}

/** Lists and reads every backup of `serverName`; `now` decides which claims are live. */
export async function listBackups(store: ObjectStore, serverName: string, now = new Date()): Promise<Catalog> {
  const objects = await objectsByBackupId(store, basePrefix(serverName));
  const ids = [...objects.keys()].sort();
  const catalog: Catalog = { serverName, backups: [], unreadable: [], incomplete: [], running: [], objects, keep: new Map() };
  const has = (id: string, name: string) => objects.get(id)!.some((o) => o.key === backupPrefix(serverName, id) + name);

  const read = await mapLimit(ids, READ_CONCURRENCY, async (id) => {
    if (!has(id, 'backup.info')) return { id, missing: true as const, claim: await liveClaim(store, objects.get(id)!, now) };
    try {
      const text = await readText(store, backupInfoKey(serverName, id));
      // Deleted between the listing and the read: skipped, as barman skips a missing file.
      if (text === undefined) return { id, missing: true as const };
      const info = parseBackupInfo(text, id);
      const keepText = has(id, KEEP_ANNOTATION) ? await readText(store, backupPrefix(serverName, id) + KEEP_ANNOTATION) : undefined;
      return { id, info, keep: parseKeep(keepText) };
    } catch (err) {
      if (isStoreWide(err)) throw err;
      return { id, error: (err as Error).message };
    }
  });
  for (const r of read) {
    if ('missing' in r) {
      if (r.claim) catalog.running.push({ backupId: r.id, claim: r.claim });
      else catalog.incomplete.push(r.id);
    }
    else if ('error' in r) catalog.unreadable.push({ backupId: r.id, error: r.error! });
    else {
      catalog.backups.push(r.info!);
      if (r.keep) catalog.keep.set(r.id, r.keep);
    }
  }
  return catalog;
}

function parseKeep(text: string | undefined): KeepTarget | undefined {
  const target = text?.trim();
  return target === 'full' || target === 'standalone' ? target : undefined;
}

/** Words that select a backup by position instead of id or name (barman >= 3.15 shortcuts). */
export const BACKUP_SHORTCUTS = ['latest', 'last', 'first', 'oldest', 'last-failed'] as const;

/**
 * The backup `ref` designates: a backup_id, a backup_name (an error if several backups share
 * it), `latest`/`last` (newest DONE), `first`/`oldest` (oldest DONE) or `last-failed` (newest
 * FAILED). Throws NotFoundError when nothing matches.
 */
export function findBackup(catalog: Pick<Catalog, 'backups' | 'serverName'>, ref: string): BackupInfo {
  const sorted = [...catalog.backups].sort((a, b) => (a.backup_id < b.backup_id ? -1 : a.backup_id > b.backup_id ? 1 : 0));
  const done = sorted.filter((b) => b.status === 'DONE');
  let found: BackupInfo | undefined;
  switch (ref) {
    case 'latest':
    case 'last':
      found = done.at(-1);
      break;
    case 'first':
    case 'oldest':
      found = done[0];
      break;
    case 'last-failed':
      found = sorted.filter((b) => b.status === 'FAILED').at(-1);
      break;
    default:
      if (BACKUP_ID_RE.test(ref)) {
        found = sorted.find((b) => b.backup_id === ref);
      } else {
        const named = sorted.filter((b) => b.backup_name === ref);
        if (named.length > 1) {
          throw new UserError(
            `backup name "${ref}" is ambiguous: it names ${named.map((b) => b.backup_id).join(', ')}`,
            'use the backup id instead',
          );
        }
        found = named[0];
      }
  }
  if (!found) {
    const what = (BACKUP_SHORTCUTS as readonly string[]).includes(ref) ? `no backup matches "${ref}"` : `unknown backup "${ref}"`;
    throw new NotFoundError(`${what} for server "${catalog.serverName}"`);
  }
  return found;
}

/*
 * Deleting a backup, resumably, and honestly when the store refuses deletes.
 *
 * An object store has no transactions, and a deletion can be interrupted anywhere. The one state
 * that must never exist is a backup.info saying DONE beside missing data files: recovery would
 * pick that backup and fail halfway (barman-cloud-backup-delete deletes the data first and has
 * that window). So a deletion runs in four steps:
 *   1. backup.info is rewritten with status FAILED and an `error` starting with
 *      DELETION_MARKER (skipped when it already says so). From here on barman, CNPG and pgark
 *      all see a failed backup, which recovery never selects and barman's retention never touches.
 *   2. every other object under base/<id>/ is deleted, in batches of the provider's limit. When
 *      this fails and a new listing shows every one of them still there (a bucket with Object Lock
 *      or a policy denying deletes refuses them all), backup.info is put back byte for byte: the
 *      backup is intact, and must not stay FAILED for good.
 *   3. the WAL only this backup needed (retention), now that its data is gone.
 *   4. backup.info is deleted, last.
 * Running the deletion again after an interruption at any point finishes the job, and retention
 * finishes any backup whose backup.info carries the marker. The rewritten file has barman 3.4's
 * key set, so barman 3.4 still reads it. A directory without backup.info (an interrupted upload)
 * goes straight to step 2. Every write carries the barmanObjectStore tags and data encryption, as
 * the backup's own objects do, or a bucket that requires them refuses it.
 */
export const DELETION_MARKER = 'pgark: deletion in progress';

export function isDeletionInProgress(info: BackupInfo): boolean {
  return info.status === 'FAILED' && (info.error ?? '').startsWith(DELETION_MARKER);
}

/** Tags and server-side encryption of the objects under base/ (barmanObjectStore tags and data.encryption). */
export type CatalogWriteOptions = Pick<PutOptions, 'tags' | 'encryption'>;

export function catalogWriteOptions(config: BarmanObjectStoreConfiguration): CatalogWriteOptions {
  return { tags: config.tags, encryption: config.data?.encryption };
}

export interface DeleteResult {
  backupId: string;
  objectsDeleted: number;
  bytesFreed: number;
}

/** Deletes `keys` in batches of the store's deleteBatchSize. */
export async function deleteInBatches(store: ObjectStore, keys: string[]): Promise<void> {
  const size = Math.max(1, store.limits.deleteBatchSize);
  for (let i = 0; i < keys.length; i += size) await store.delete(keys.slice(i, i + size));
}

export interface MarkOptions {
  /** The parsed backup.info when the caller has it; otherwise it is read. */
  info?: BackupInfo;
  /** The backup's folder when it is not base/<id>/ (an incremental's, see incremental.ts). */
  prefix?: string;
  /** How the marked backup.info is written when barman 3.4's keys are not all it has (an incremental's parent_backup_id). */
  serialize?: (info: BackupInfo) => string;
  write?: CatalogWriteOptions;
  now?: Date;
}

export interface DeleteOptions extends MarkOptions {
  /** Delete even with a barman-cloud-backup-keep annotation (barman refuses). */
  ignoreKeep?: boolean;
}

export interface DeletionStepOptions extends MarkOptions {
  /** WAL to delete once the backup's data is gone (the WAL only it needed). */
  walKeys?: string[];
  onPhase?: (phase: 'marked' | 'wal-deleted') => void;
}

async function listObjects(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const entry of store.list(prefix)) if (entry.object) objects.push(entry.object);
  return objects;
}

/**
 * Step 1: rewrites backup.info as FAILED with the deletion marker, unless it already carries it
 * or does not exist. An unreadable backup.info is replaced by a minimal marker file. Returns the
 * bytes it replaced (undefined when it wrote nothing).
 */
export async function markDeletionInProgress(store: ObjectStore, serverName: string, backupId: string, opts: MarkOptions = {}): Promise<Buffer | undefined> {
  const infoKey = folderOf(serverName, backupId, opts) + 'backup.info';
  const original = await readBytes(store, infoKey);
  if (original === undefined) return undefined;
  let current = opts.info;
  if (!current) {
    try {
      current = parseBackupInfo(original.toString('utf8'), backupId);
    } catch {
      current = undefined;
    }
  }
  if (current && isDeletionInProgress(current)) return undefined;
  const since = PyDateTime.fromDate(opts.now ?? new Date()).isoformat();
  const marked: BackupInfo = {
    ...(current ?? { ...emptyBackupInfo(backupId), server_name: 'cloud' }),
    status: 'FAILED',
    error: `${DELETION_MARKER} since ${since} (was ${current?.status ?? 'unreadable'}); run "pgark backup delete ${backupId}" to finish`,
  };
  await store.put(infoKey, Buffer.from((opts.serialize ?? serializeBackupInfo)(marked), 'utf8'), { ...opts.write, contentType: 'text/plain' });
  return original;
}

function folderOf(serverName: string, backupId: string, opts: Pick<MarkOptions, 'prefix'>): string {
  return opts.prefix ?? backupPrefix(serverName, backupId);
}

async function readBytes(store: ObjectStore, key: string): Promise<Buffer | undefined> {
  try {
    return await store.getBuffer(key);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** Steps 2 and 4 for a directory no deletion marker protects (an uncommitted upload): every object but backup.info, then backup.info. */
export async function deleteBackupObjects(store: ObjectStore, serverName: string, backupId: string): Promise<DeleteResult> {
  const infoKey = backupInfoKey(serverName, backupId);
  const objects = await listObjects(store, backupPrefix(serverName, backupId));
  await deleteInBatches(store, objects.filter((o) => o.key !== infoKey).map((o) => o.key));
  if (objects.some((o) => o.key === infoKey)) await store.delete([infoKey]);
  return { backupId, objectsDeleted: objects.length, bytesFreed: objects.reduce((n, o) => n + o.size, 0) };
}

/** Steps 1 to 4 for one backup (see the design above). */
export async function runDeletionStep(store: ObjectStore, serverName: string, backupId: string, opts: DeletionStepOptions = {}): Promise<DeleteResult> {
  const prefix = folderOf(serverName, backupId, opts);
  const infoKey = prefix + 'backup.info';
  const replaced = await markDeletionInProgress(store, serverName, backupId, opts);
  opts.onPhase?.('marked');
  const objects = await listObjects(store, prefix);
  const data = objects.filter((o) => o.key !== infoKey);
  try {
    await deleteInBatches(store, data.map((o) => o.key));
  } catch (err) {
    if (replaced) await restoreIfUntouched(store, prefix, backupId, data, replaced, opts.write, err);
    throw err;
  }
  await deleteInBatches(store, opts.walKeys ?? []);
  opts.onPhase?.('wal-deleted');
  if (objects.some((o) => o.key === infoKey)) await store.delete([infoKey]);
  return { backupId, objectsDeleted: objects.length, bytesFreed: objects.reduce((n, o) => n + o.size, 0) };
}

/**
 * After a failed delete of a backup's data: when every data object is still there, puts the
 * original backup.info back and throws an error saying so; otherwise returns (the backup stays
 * marked, honestly, and the caller rethrows).
 */
async function restoreIfUntouched(
  store: ObjectStore,
  prefix: string,
  backupId: string,
  data: ObjectInfo[],
  original: Buffer,
  write: CatalogWriteOptions | undefined,
  cause: unknown,
): Promise<void> {
  let left: Set<string>;
  try {
    left = new Set((await listObjects(store, prefix)).map((o) => o.key));
  } catch {
    return;
  }
  if (!data.every((o) => left.has(o.key))) return;
  await store.put(prefix + 'backup.info', original, { ...write, contentType: 'text/plain' });
  throw new PgarkError(
    `backup ${backupId} was not deleted and is unchanged: ${(cause as Error).message}`,
    1,
    'the store refused to delete its objects: Object Lock retention, a legal hold or a policy denying deletes; retention deletes it once the store allows it',
  );
}

/** The refusal to delete a backup that is still running. */
export function runningBackupError(backupId: string, claim: ClaimState): UserError {
  const owner = [claim.host && `on ${claim.host}`, claim.pid !== undefined && `pid ${claim.pid}`].filter(Boolean).join(' ');
  const seen = claim.refreshedAt ? `, last heartbeat ${claim.refreshedAt.toISOString()}` : '';
  const stale = claim.staleAt ? ` (${claim.staleAt.toISOString()} if it has stopped)` : '';
  return new UserError(
    `backup "${backupId}" is running${owner ? ` (${owner}${seen})` : seen} and is not deleted`,
    `wait for it to end; a backup that was killed becomes deletable once its claim has gone ${CLAIM_STALE_PERIODS} heartbeat periods (${CLAIM_STALE_PERIODS * claim.heartbeatSeconds} s) without a refresh${stale}`,
  );
}

/** Deletes every object of one backup (see the design above); refuses a backup with a keep annotation, or one still running. */
export async function deleteBackup(store: ObjectStore, serverName: string, backupId: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
  const prefix = backupPrefix(serverName, backupId);
  const objects = await listObjects(store, prefix);
  if (objects.length === 0) throw new NotFoundError(`backup "${backupId}" not found for server "${serverName}"`);
  if (!objects.some((o) => o.key === backupInfoKey(serverName, backupId))) {
    const claim = await liveClaim(store, objects, opts.now ?? new Date());
    if (claim) throw runningBackupError(backupId, claim);
  }
  if (!opts.ignoreKeep && objects.some((o) => o.key === prefix + KEEP_ANNOTATION)) {
    throw new UserError(
      `backup "${backupId}" has a keep annotation and is not deleted`,
      'release it first (barman-cloud-backup-keep --release) if the backup is no longer needed',
    );
  }
  return runDeletionStep(store, serverName, backupId, opts);
}
