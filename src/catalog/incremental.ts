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
import { backupPrefix } from './layout.js';
import { parseBackupInfo, serializeBackupInfo, type BackupInfo } from './backup-info.js';
import { mapLimit } from './catalog.js';
import type { ObjectStore, PutOptions } from '../storage/types.js';
import { NotFoundError, PgarkError } from '../util/errors.js';

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
  /** Folders with objects but no readable backup.info (interrupted or damaged). */
  unreadable: { backupId: string; error: string }[];
}

/** Every incremental of a server, oldest first. */
export async function listIncrementals(store: ObjectStore, serverName: string): Promise<IncrementalListing> {
  const root = `${serverName}/${INCREMENTAL_DIR}/`;
  const ids = new Set<string>();
  const withInfo = new Set<string>();
  for await (const entry of store.list(root)) {
    if (!entry.object) continue;
    const rest = entry.object.key.slice(root.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue;
    const id = rest.slice(0, slash);
    ids.add(id);
    if (rest.slice(slash + 1) === 'backup.info') withInfo.add(id);
  }
  const listing: IncrementalListing = { backups: [], unreadable: [] };
  const read = await mapLimit([...ids].sort(), 8, async (id) => {
    if (!withInfo.has(id)) return { id, error: 'no backup.info (an interrupted incremental backup)' };
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
