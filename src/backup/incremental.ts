/**
 * Incremental selection: which files and blocks a backup stores and which it only references.
 * The parent is the newest DONE backup of the same system and timeline that has a file map; a
 * file is referenced whole when its size and mtime equal the parent map's entry and a read of it
 * now gives the same CRC-32C, i.e. the bytes the holder stored are the bytes a copy made now would
 * hold (anything written after the backup's start is replayed from WAL either way). Any other file
 * the parent has a block map for is read once and only its blocks whose hash differs are stored;
 * a file new since the parent (or mapped by a version-1 map) is stored whole.
 */
import type { ObjectStore } from '../storage/types.js';
import { listBackups } from '../catalog/catalog.js';
import {
  BLOCK_DIR,
  BLOCK_HASH_BYTES,
  blockEntryPath,
  blockHolders,
  holderRuns,
  listIncrementals,
  parseBlockEntry,
  readFileMap,
  type BlockMap,
  type FileMap,
  type MappedFile,
} from '../catalog/incremental.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { Crc32c, selfCheckedCrcs } from '../io/hash.js';
import { UserError } from '../util/errors.js';
import type { ServerFacts, SourceEntry } from './types.js';
import type { StoredFile } from './archive-writer.js';
import { BLOCK_SIZE, BlockHashes, blocksOf, hashingEntry } from './block-map.js';

export type BackupType = 'full' | 'incremental';

export interface Parent {
  info: BackupInfo;
  map: FileMap;
}

/** The newest DONE backup (full or incremental) of this server's system and timeline, with its file map. */
export async function findParent(store: ObjectStore, serverName: string, facts: ServerFacts, timeline: number): Promise<Parent> {
  const [fulls, incrementals] = await Promise.all([listBackups(store, serverName), listIncrementals(store, serverName)]);
  const candidates = [...fulls.backups, ...incrementals.backups]
    .filter((b) => b.status === 'DONE' && b.systemid === facts.systemId && b.timeline === timeline)
    .sort((a, b) => a.backup_id.localeCompare(b.backup_id));
  const newest = candidates.at(-1);
  if (!newest) {
    throw new UserError(
      `--type incremental: no DONE backup of system ${facts.systemId} on timeline ${timeline} to be incremental to`,
      'take a full backup first (pgark backup --type full)',
    );
  }
  const map = await readFileMap(store, serverName, newest);
  if (!map) {
    throw new UserError(
      `--type incremental: the newest backup ${newest.backup_id} has no pgark file map (taken by barman-cloud or an older pgark)`,
      'take a full backup with this pgark first (pgark backup --type full)',
    );
  }
  return { info: newest, map };
}

/** The manifest path of an entry of archive `archive` ("data" or a tablespace oid). */
export function manifestPath(archive: string, path: string): string {
  return archive === 'data' ? path : `pg_tblspc/${archive}/${path}`;
}

async function crcOf(body: AsyncIterable<Uint8Array>): Promise<number> {
  const crc = new Crc32c();
  for await (const chunk of body) crc.update(chunk);
  return crc.digest();
}

/** A block member by its manifest-form path (a tablespace's under pg_tblspc/<oid>/). */
function isBlockMember(path: string): boolean {
  return parseBlockEntry(path.replace(/^pg_tblspc\/\d+\//, '')) !== undefined;
}

/** A member under BLOCK_DIR in the source itself would be taken for a stored block on restore. */
async function* refuseReserved(archive: string, entries: AsyncIterable<SourceEntry>): AsyncIterable<SourceEntry> {
  for await (const entry of entries) {
    if (entry.path === BLOCK_DIR || entry.path.startsWith(`${BLOCK_DIR}/`)) {
      throw new UserError(`${manifestPath(archive, entry.path)}: the data directory holds an entry under ${BLOCK_DIR}/, a name pgark reserves for stored blocks`, 'move it out of the data directory');
    }
    yield entry;
  }
}

async function* once(block: Buffer): AsyncIterable<Uint8Array> {
  yield block;
}

/**
 * Compares a file block by block with its parent's block map: unchanged blocks keep their holder,
 * changed and new ones are passed on as block members; `decided` gets the file's map entry, with
 * its CRC-32C over the same bytes (the ones a restore reassembles).
 */
async function* changedBlocks(
  entry: Extract<SourceEntry, { type: 'file' }>,
  body: AsyncIterable<Uint8Array>,
  path: string,
  was: MappedFile & { blocks: BlockMap },
  backupId: string,
  decided: MappedFile[],
): AsyncIterable<SourceEntry> {
  const size = was.blocks.size;
  const parentHashes = Buffer.from(was.blocks.hashes, 'base64');
  const parentHolders = blockHolders(was);
  const parentBlocks = parentHolders.length;
  const crc = new Crc32c();
  const hashes = new BlockHashes(entry.size, size);
  const holders: string[] = [];
  let i = 0;
  for await (const block of blocksOf(body, entry.size, size)) {
    crc.update(block);
    const h = hashes.add(block);
    // A block as long as the parent's and with its hash is the parent's block (a shorter last block never matches a full one).
    const sameLength = i < parentBlocks && block.length === Math.min(size, was.size - i * size);
    if (sameLength && h.equals(parentHashes.subarray(i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES))) {
      holders.push(parentHolders[i]);
    } else {
      holders.push(backupId);
      yield { type: 'file', path: blockEntryPath(entry.path, i), mode: entry.mode, mtime: entry.mtime, uid: entry.uid, gid: entry.gid, size: block.length, body: once(block) };
    }
    i++;
  }
  decided.push({
    path,
    size: entry.size,
    mtime: entry.mtime.getTime(),
    crc32c: crc.digest(),
    holder: holders.reduce((a, b) => (b > a ? b : a), was.holder),
    blocks: { size, hashes: hashes.base64(), runs: holderRuns(holders) },
  });
}

/**
 * Passes on the entries to store. A file equal to the parent's (size, mtime and CRC-32C) goes to
 * `decided` with its holder instead; a changed file the parent has a block map for is passed on as
 * its changed blocks only (changedBlocks). Only a local source can reopen a file, so only it can
 * be filtered.
 */
async function* changedEntries(
  archive: string,
  entries: AsyncIterable<SourceEntry>,
  parent: Map<string, MappedFile>,
  backupId: string,
  decided: MappedFile[],
): AsyncIterable<SourceEntry> {
  for await (const entry of entries) {
    if (entry.type !== 'file' || !entry.reopen) {
      yield entry;
      continue;
    }
    const path = manifestPath(archive, entry.path);
    const was = parent.get(path);
    // A file that ends in its own CRC-32C (pg_control, pg_filenode.map, two-phase state) has a CRC-32C that
    // tells nothing (io/hash.ts selfCheckedCrcs): it is stored again, not kept on its mtime alone.
    const sameMeta = was !== undefined && !selfCheckedCrcs().has(was.crc32c >>> 0) && was.size === entry.size && was.mtime === entry.mtime.getTime();
    if (sameMeta && (await crcOf(entry.body)) === was.crc32c) {
      decided.push({ ...was, path });
      continue;
    }
    // The body was read for the comparison (or not at all): a fresh one is compared or stored.
    const body = sameMeta ? entry.reopen() : entry.body;
    // An empty file has no blocks to hold it: stored whole, it stays a member of the tars.
    if (was?.blocks && entry.size > 0) yield* changedBlocks(entry, body, path, { ...was, blocks: was.blocks }, backupId, decided);
    else yield { ...entry, body };
  }
}

/**
 * What one backup stores and maps: wraps each archive's entries (the incremental comparison, and
 * block hashing of every file stored whole), then gives the backup_manifest's files and the file
 * map from what the archive writers stored.
 */
export class BackupFiles {
  private readonly decided: MappedFile[] = [];
  /** Block hashes of the files stored whole, by manifest path. */
  private readonly hashes = new Map<string, string>();
  private readonly parentFiles: Map<string, MappedFile> | undefined;

  constructor(
    private readonly backupId: string,
    parent: Parent | undefined,
  ) {
    this.parentFiles = parent && new Map(parent.map.files.map((f) => [f.path, f]));
  }

  entries(archive: string, entries: AsyncIterable<SourceEntry>): AsyncIterable<SourceEntry> {
    const source = refuseReserved(archive, entries);
    const compared = this.parentFiles ? changedEntries(archive, source, this.parentFiles, this.backupId, this.decided) : source;
    return this.hashWhole(archive, compared);
  }

  private async *hashWhole(archive: string, entries: AsyncIterable<SourceEntry>): AsyncIterable<SourceEntry> {
    for await (const entry of entries) {
      // Only changedBlocks yields block members: the source's own were refused.
      if (entry.type !== 'file' || parseBlockEntry(entry.path)) yield entry;
      else yield hashingEntry(entry, (h) => this.hashes.set(manifestPath(archive, entry.path), h));
    }
  }

  /** The restored directory's files for backup_manifest: those stored whole (`stored`, manifest paths) and those decided from the parent. */
  manifestFiles(stored: readonly StoredFile[]): StoredFile[] {
    return [...stored.filter((f) => !isBlockMember(f.path)), ...this.decided.map((f) => ({ path: f.path, size: f.size, mtime: new Date(f.mtime), crc32c: f.crc32c }))];
  }

  /** The flattened file map's entries; `stored` without backup_label and backup_manifest, which belong to this backup alone. */
  mapFiles(stored: readonly StoredFile[]): MappedFile[] {
    const own = stored
      .filter((f) => !isBlockMember(f.path))
      .map((f): MappedFile => {
        const hashes = this.hashes.get(f.path);
        return { path: f.path, size: f.size, mtime: f.mtime.getTime(), crc32c: f.crc32c, holder: this.backupId, ...(hashes !== undefined && { blocks: { size: BLOCK_SIZE, hashes } }) };
      });
    return [...own, ...this.decided];
  }
}
