/**
 * Incremental backups in the store: where they live, the file map saying which backup holds each
 * file, and the chains they form.
 *
 * An incremental lives under <server>/pgark-incremental/<id>/, a prefix barman-cloud never lists
 * (it reads only <server>/base/ and <server>/wals/), so barman-cloud-backup-list shows neither the
 * incremental nor a broken backup: barman's catalog stays exactly the full backups. Its
 * backup.info has barman's keys plus barman 3.11's `parent_backup_id` (safe there: no barman 3.4
 * reads that prefix).
 *
 * Every pgark backup, full or incremental, stores a file map (pgark-files.json) beside its tars:
 * each file's size, mtime, CRC-32C and the id of the backup whose tars hold its bytes. The map is
 * flattened (an incremental's map names the holder of every file of the whole chain), so a restore
 * reads one map, and the next incremental compares against one map. barman-cloud-restore ignores
 * the object (its name starts neither with "data" nor a tablespace oid).
 */
import { BACKUP_ID_RE, backupPrefix } from './layout.js';
import { parseBackupInfo, serializeBackupInfo, type BackupInfo } from './backup-info.js';
import { deleteBackup, findBackup, listBackups, mapLimit, runDeletionStep, type CatalogWriteOptions, type DeleteResult, type MarkOptions } from './catalog.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../storage/types.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';

export const INCREMENTAL_DIR = 'pgark-incremental';
export const FILE_MAP = 'pgark-files.json';

export function incrementalPrefix(serverName: string, backupId: string): string {
  return `${serverName}/${INCREMENTAL_DIR}/${backupId}/`;
}

export function isIncremental(info: Pick<BackupInfo, 'parent_backup_id'>): boolean {
  return typeof info.parent_backup_id === 'string' && info.parent_backup_id !== '';
}

/** The folder of a backup: base/<id>/ for a full one, pgark-incremental/<id>/ for an incremental. */
export function prefixOf(serverName: string, info: Pick<BackupInfo, 'backup_id' | 'parent_backup_id'>): string {
  return isIncremental(info) ? incrementalPrefix(serverName, info.backup_id) : backupPrefix(serverName, info.backup_id);
}

export interface MappedFile {
  /** As backup_manifest names it (tablespace files under pg_tblspc/<oid>/). */
  path: string;
  size: number;
  /** Milliseconds since the epoch, as the source reported it. */
  mtime: number;
  crc32c: number;
  /** The backup whose tars hold the bytes. */
  holder: string;
}

export interface FileMap {
  version: 1;
  backupId: string;
  parent: string | null;
  files: MappedFile[];
}

export function serializeFileMap(map: FileMap): Buffer {
  return Buffer.from(JSON.stringify(map));
}

function badMap(key: string, what: string): PgarkError {
  return new PgarkError(`${key} is not a pgark file map: ${what}`, 1, 'the backup cannot serve as a parent or be restored as part of a chain; take a full backup');
}

/** The file map of a backup, or undefined when it has none (barman-cloud's backups, older pgark ones). */
export async function readFileMap(store: ObjectStore, serverName: string, info: Pick<BackupInfo, 'backup_id' | 'parent_backup_id'>): Promise<FileMap | undefined> {
  const key = prefixOf(serverName, info) + FILE_MAP;
  let text: string;
  try {
    text = (await store.getBuffer(key)).toString('utf8');
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  let map: FileMap;
  try {
    map = JSON.parse(text) as FileMap;
  } catch (err) {
    throw badMap(key, (err as Error).message);
  }
  if (map.version !== 1 || map.backupId !== info.backup_id || !Array.isArray(map.files)) throw badMap(key, 'unknown version or another backup\'s map');
  for (const f of map.files) {
    if (typeof f.path !== 'string' || !Number.isSafeInteger(f.size) || !Number.isFinite(f.mtime) || !Number.isInteger(f.crc32c) || typeof f.holder !== 'string') {
      throw badMap(key, `malformed entry ${JSON.stringify(f).slice(0, 120)}`);
    }
  }
  return map;
}

export async function writeFileMap(store: ObjectStore, serverName: string, info: Pick<BackupInfo, 'backup_id' | 'parent_backup_id'>, map: FileMap, options: Pick<PutOptions, 'tags' | 'encryption'>): Promise<void> {
  await store.put(prefixOf(serverName, info) + FILE_MAP, serializeFileMap(map), { ...options, contentType: 'application/json' });
}

/** barman 3.4's text plus barman 3.11's parent_backup_id (parseBackupInfo reads it back). */
export function serializeIncrementalInfo(info: BackupInfo): string {
  return `${serializeBackupInfo(info)}parent_backup_id=${info.parent_backup_id}\n`;
}

export interface IncrementalListing {
  backups: BackupInfo[];
  /** Folders with a backup.info that cannot be read or names no parent (damaged). */
  unreadable: { backupId: string; error: string }[];
  /** Folders without backup.info: an incremental still running, or one that died (never a parent). */
  incomplete: string[];
  /** Every object under pgark-incremental/<id>/, by backup id. */
  objects: Map<string, ObjectInfo[]>;
}

/** Every incremental of a server, oldest first. */
export async function listIncrementals(store: ObjectStore, serverName: string): Promise<IncrementalListing> {
  const root = `${serverName}/${INCREMENTAL_DIR}/`;
  const objects = new Map<string, ObjectInfo[]>();
  const withInfo = new Set<string>();
  for await (const entry of store.list(root)) {
    if (!entry.object) continue;
    const rest = entry.object.key.slice(root.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue;
    const id = rest.slice(0, slash);
    if (!objects.has(id)) objects.set(id, []);
    objects.get(id)!.push(entry.object);
    if (rest.slice(slash + 1) === 'backup.info') withInfo.add(id);
  }
  const listing: IncrementalListing = { backups: [], unreadable: [], incomplete: [], objects };
  const ids = [...objects.keys()].sort();
  listing.incomplete = ids.filter((id) => !withInfo.has(id));
  const read = await mapLimit(ids.filter((id) => withInfo.has(id)), 8, async (id) => {
    try {
      const info = parseBackupInfo((await store.getBuffer(`${root}${id}/backup.info`)).toString('utf8'), id);
      if (!isIncremental(info)) return { id, error: 'backup.info names no parent_backup_id' };
      return { id, info };
    } catch (err) {
      return { id, error: (err as Error).message };
    }
  });
  for (const r of read) {
    if (r.info) listing.backups.push(r.info);
    else listing.unreadable.push({ backupId: r.id, error: r.error! });
  }
  return listing;
}

/** The chain ending at `id`: its full backup first, `id` last. Throws when a parent is gone. */
export function chainOf<T extends Pick<BackupInfo, 'backup_id' | 'parent_backup_id'>>(id: string, all: readonly T[]): T[] {
  const byId = new Map(all.map((b) => [b.backup_id, b]));
  const chain: T[] = [];
  for (let cur = byId.get(id); ; cur = byId.get(cur.parent_backup_id!)) {
    if (!cur) throw new PgarkError(`the backup chain of ${id} is broken: ${chain.at(-1)?.parent_backup_id ?? id} is missing`, 1, 'restore an older backup; take a full backup to start a new chain');
    chain.unshift(cur);
    if (!isIncremental(cur)) return chain;
    if (chain.length > all.length) throw new PgarkError(`the backup chain of ${id} loops`, 1);
  }
}

/**
 * For each member of `chain` (by backup id), the paths the flattened map says its tars hold.
 * Throws when the map names a holder outside the chain: its files could be restored from nowhere.
 */
export function filesByHolder(map: FileMap, chain: readonly Pick<BackupInfo, 'backup_id'>[]): Map<string, Set<string>> {
  const held = new Map<string, Set<string>>(chain.map((m) => [m.backup_id, new Set()]));
  for (const f of map.files) {
    const set = held.get(f.holder);
    if (!set) throw new PgarkError(`the file map of ${map.backupId} names ${f.holder} as the holder of ${f.path}, which is not in its chain`, 1);
    set.add(f.path);
  }
  return held;
}

/** The incrementals that need `id` (directly or through other incrementals), newest first. */
export function dependentsOf<T extends Pick<BackupInfo, 'backup_id' | 'parent_backup_id'>>(id: string, incrementals: readonly T[]): T[] {
  const needed = new Set([id]);
  const out: T[] = [];
  for (const b of [...incrementals].sort((a, c) => a.backup_id.localeCompare(c.backup_id))) {
    if (b.parent_backup_id && needed.has(b.parent_backup_id)) {
      needed.add(b.backup_id);
      out.unshift(b);
    }
  }
  return out;
}

/** How catalog.ts's resumable deletion reaches a backup that may be an incremental: its folder, and a marker that keeps parent_backup_id. */
export function deletionTarget(serverName: string, info: Pick<BackupInfo, 'backup_id' | 'parent_backup_id'> | undefined): Pick<MarkOptions, 'prefix' | 'serialize'> {
  if (!info || !isIncremental(info)) return {};
  return { prefix: incrementalPrefix(serverName, info.backup_id), serialize: serializeIncrementalInfo };
}

/** Statuses of an incremental that still needs its parent (it may be restored, or become restorable). */
const NEEDS_PARENT = new Set<BackupInfo['status']>(['DONE', 'WAITING_FOR_WALS']);

/**
 * What deleting backup `id` must delete first: nothing, or (with `cascade`) every incremental that
 * depends on it, newest first. Without `cascade`, a backup that a live incremental needs is refused.
 */
export function chainDeletionOrder(id: string, incrementals: readonly BackupInfo[], cascade: boolean): BackupInfo[] {
  const dependants = dependentsOf(id, incrementals);
  const live = dependants.filter((b) => NEEDS_PARENT.has(b.status));
  if (live.length > 0 && !cascade) {
    throw new UserError(
      `backup "${id}" is needed by incremental backup${live.length > 1 ? 's' : ''} ${live.map((b) => b.backup_id).join(', ')} and is not deleted`,
      'deleting it would leave them unrestorable: delete them first (newest first), or pass --cascade to delete them with it',
    );
  }
  return dependants;
}

/** Deletes an incremental (or a full: `info` says which) resumably, as catalog.ts deletes a full backup. */
export function deleteChainMember(store: ObjectStore, serverName: string, info: BackupInfo, write?: CatalogWriteOptions): Promise<DeleteResult> {
  return runDeletionStep(store, serverName, info.backup_id, { info, write, ...deletionTarget(serverName, info) });
}

/**
 * `pgark backup delete`: one backup, full or incremental, by id or name, and (with `cascade`) the
 * incrementals that need it, newest first; a backup a kept incremental needs is refused without
 * `cascade`. A bare id also removes an incomplete, running-checked or unreadable backup folder.
 */
export async function deleteWithDependants(store: ObjectStore, serverName: string, ref: string, opts: { cascade: boolean; write: CatalogWriteOptions }): Promise<DeleteResult[]> {
  const [catalog, incrementals] = await Promise.all([listBackups(store, serverName), listIncrementals(store, serverName)]);
  const bare =
    BACKUP_ID_RE.test(ref) && (catalog.incomplete.includes(ref) || catalog.running.some((r) => r.backupId === ref) || catalog.unreadable.some((u) => u.backupId === ref));
  const info = bare ? undefined : findBackup({ serverName, backups: [...catalog.backups, ...incrementals.backups].sort((a, b) => a.backup_id.localeCompare(b.backup_id)) }, ref);
  // Checked before any dependant goes: deleteBackup would refuse the annotated backup only after them.
  if (opts.cascade && info && catalog.keep.has(info.backup_id)) {
    throw new UserError(`backup "${info.backup_id}" has a keep annotation: nothing deleted`, 'release it first (barman-cloud-backup-keep --release) if the backup is no longer needed');
  }
  const results: DeleteResult[] = [];
  for (const dependant of info ? chainDeletionOrder(info.backup_id, incrementals.backups, opts.cascade) : []) {
    results.push(await deleteChainMember(store, serverName, dependant, opts.write));
  }
  results.push(info && isIncremental(info) ? await deleteChainMember(store, serverName, info, opts.write) : await deleteBackup(store, serverName, info?.backup_id ?? ref, { info, write: opts.write }));
  return results;
}
