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
 * each file's size, mtime, CRC-32C, the id of the backup whose tars hold its bytes and its block
 * map (a truncated SHA-256 per block). The map is flattened (an incremental's map names the holder
 * of every file, and of every block of a file stored block by block, over the whole chain), so a
 * restore reads one map, and the next incremental compares against one map. barman-cloud-restore
 * ignores the object (its name starts neither with "data" nor a tablespace oid).
 *
 * A block an incremental stores is the tar member `.pgark-blocks/<path>/<block number>` of the
 * archive that holds <path>; a restore writes it at its offset (recovery/chain.ts).
 */
import { BACKUP_ID_RE, backupPrefix } from './layout.js';
import { parseBackupInfo, serializeBackupInfo, type BackupInfo } from './backup-info.js';
import { deleteBackup, findBackup, listBackups, mapLimit, objectsByBackupId, runDeletionStep, type CatalogWriteOptions, type DeleteResult, type MarkOptions } from './catalog.js';
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

export interface BlockMap {
  /** Bytes per block; the last block of a file may be shorter. */
  size: number;
  /** BLOCK_HASH_BYTES per block, base64: a truncated SHA-256 of the block as its holder stored it. */
  hashes: string;
  /**
   * Which backup holds each block, as [holder, number of blocks] in file order. Absent while
   * `holder` stored the file whole; set once any member stored blocks of it.
   */
  runs?: [string, number][];
}

export const BLOCK_HASH_BYTES = 16;
/** The folder, in an incremental's tars, of the blocks it stores: .pgark-blocks/<path>/<block number>. */
export const BLOCK_DIR = '.pgark-blocks';

export function blockEntryPath(path: string, block: number): string {
  return `${BLOCK_DIR}/${path}/${block}`;
}

/** The file and block number a block member names, or undefined for any other member. */
export function parseBlockEntry(path: string): { path: string; block: number } | undefined {
  if (!path.startsWith(`${BLOCK_DIR}/`)) return undefined;
  const slash = path.lastIndexOf('/');
  const block = Number(path.slice(slash + 1));
  if (slash <= BLOCK_DIR.length + 1 || !/^\d+$/.test(path.slice(slash + 1)) || !Number.isSafeInteger(block)) return undefined;
  return { path: path.slice(BLOCK_DIR.length + 1, slash), block };
}

export function blockCount(fileSize: number, blockSize: number): number {
  return Math.ceil(fileSize / blockSize);
}

/** Each block's holder, one entry per block: a file stored whole has its holder everywhere. */
export function blockHolders(file: MappedFile): string[] {
  const n = blockCount(file.size, file.blocks?.size ?? 1);
  if (!file.blocks?.runs) return new Array<string>(n).fill(file.holder);
  return file.blocks.runs.flatMap(([holder, count]) => new Array<string>(count).fill(holder));
}

/** Run-length form of per-block holders (BlockMap.runs). */
export function holderRuns(holders: readonly string[]): [string, number][] {
  const runs: [string, number][] = [];
  for (const h of holders) {
    const last = runs.at(-1);
    if (last && last[0] === h) last[1]++;
    else runs.push([h, 1]);
  }
  return runs;
}

/** How a restore writes one tar member of a file stored block by block: at `offset`, only the blocks `keep` names. */
export interface Placement {
  /** The file written, relative to the tar's root. */
  path: string;
  /** Where the member's first byte goes in the file. */
  offset: number;
  /** The file's size once every member is written. */
  size: number;
  blockSize: number;
  /** Whether this member's copy of block `block` (numbered from the file's start) is the one restored. */
  keep: (block: number) => boolean;
}

export interface MappedFile {
  /** As backup_manifest names it (tablespace files under pg_tblspc/<oid>/). */
  path: string;
  size: number;
  /** Milliseconds since the epoch, as the source reported it. */
  mtime: number;
  crc32c: number;
  /** The backup whose tars hold the bytes (for a file stored block by block: its newest holder). */
  holder: string;
  /** Absent in maps of pgark before block-level incrementals (version 1): such a file is compared whole. */
  blocks?: BlockMap;
}

/** Maps are written as version 2 (block maps); version 1 (file level only) is still read. */
export const FILE_MAP_VERSION = 2;

export interface FileMap {
  version: 1 | 2;
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
  if ((map.version !== 1 && map.version !== FILE_MAP_VERSION) || map.backupId !== info.backup_id || !Array.isArray(map.files)) throw badMap(key, 'unknown version or another backup\'s map');
  for (const f of map.files) {
    if (typeof f.path !== 'string' || !Number.isSafeInteger(f.size) || !Number.isFinite(f.mtime) || !Number.isInteger(f.crc32c) || typeof f.holder !== 'string' || !blockMapOk(f)) {
      throw badMap(key, `malformed entry ${JSON.stringify(f).slice(0, 120)}`);
    }
  }
  return map;
}

/** A block map whose hashes and runs cover exactly the file's blocks: a restore trusts it for every offset. */
function blockMapOk(f: MappedFile): boolean {
  const b = f.blocks;
  if (b === undefined) return true;
  if (!Number.isSafeInteger(b.size) || b.size <= 0 || typeof b.hashes !== 'string') return false;
  const n = blockCount(f.size, b.size);
  if (Buffer.from(b.hashes, 'base64').length !== n * BLOCK_HASH_BYTES) return false;
  if (b.runs === undefined) return true;
  return Array.isArray(b.runs) && b.runs.every((r) => Array.isArray(r) && typeof r[0] === 'string' && Number.isSafeInteger(r[1]) && r[1] > 0) && b.runs.reduce((s, r) => s + r[1], 0) === n;
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
  const objects = await objectsByBackupId(store, root);
  const listing: IncrementalListing = { backups: [], unreadable: [], incomplete: [], objects };
  const ids = [...objects.keys()].sort();
  const hasInfo = (id: string) => objects.get(id)!.some((o) => o.key === `${root}${id}/backup.info`);
  listing.incomplete = ids.filter((id) => !hasInfo(id));
  const read = await mapLimit(ids.filter(hasInfo), 8, async (id) => {
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
    for (const holder of f.blocks?.runs ? new Set(f.blocks.runs.map((r) => r[0])) : [f.holder]) {
      const set = held.get(holder);
      if (!set) throw new PgarkError(`the file map of ${map.backupId} names ${holder} as a holder of ${f.path}, which is not in its chain`, 1);
      set.add(f.path);
    }
  }
  return held;
}

/** A tar member's path as verify keys it: manifest form, a block member's file included (.pgark-blocks/pg_tblspc/<oid>/...). */
export function chainPath(under: string, tarPath: string): string {
  const block = parseBlockEntry(tarPath);
  return block ? blockEntryPath(under + block.path, block.block) : under + tarPath;
}

/**
 * verify's view of the files stored block by block: every block must be in its holder's tars, as
 * that holder's whole copy or as its block member (`pieces`: the chainPath of every member read,
 * by backup id). The reassembled file's size and CRC-32C are then the map's (the restore reads the
 * file back and checks them); a block with no copy is a problem.
 */
export function blockFilesFound(map: FileMap, pieces: ReadonlyMap<string, ReadonlySet<string>>): { found: Map<string, { size: number; crc32c: number; holder: string }>; problems: { path: string; what: string }[] } {
  const found = new Map<string, { size: number; crc32c: number; holder: string }>();
  const problems: { path: string; what: string }[] = [];
  for (const f of map.files) {
    if (!f.blocks?.runs) continue;
    const missing = blockHolders(f)
      .map((holder, block) => ({ holder, block }))
      .filter(({ holder, block }) => !pieces.get(holder)?.has(f.path) && !pieces.get(holder)?.has(blockEntryPath(f.path, block)));
    if (missing.length) problems.push({ path: f.path, what: `${f.path}: block ${missing[0].block} (of ${missing.length} missing) is in no tar of ${missing[0].holder}, which the file map names as its holder` });
    else found.set(f.path, { size: f.size, crc32c: f.crc32c, holder: f.holder });
  }
  return { found, problems };
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
