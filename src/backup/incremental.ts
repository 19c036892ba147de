/**
 * File-level incremental selection: which files an incremental backup stores and which it only
 * references. The parent is the newest DONE backup of the same system and timeline that has a
 * file map; a file is referenced when its size and mtime equal the parent map's entry and a read
 * of it now gives the same CRC-32C, i.e. the bytes the holder stored are the bytes a copy made now
 * would hold (anything written after the backup's start is replayed from WAL either way).
 * A file whose size or mtime changed is stored without the extra read.
 */
import type { ObjectStore } from '../storage/types.js';
import { listBackups } from '../catalog/catalog.js';
import { listIncrementals, readFileMap, type FileMap, type MappedFile } from '../catalog/incremental.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { Crc32c } from '../io/hash.js';
import { UserError } from '../util/errors.js';
import type { ServerFacts, SourceEntry } from './types.js';

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

/**
 * Passes on the entries to store; files equal to the parent's go to `references` (with their
 * holder) instead. Only a local source can reopen a file, so only it can be filtered.
 */
export async function* changedEntries(
  archive: string,
  entries: AsyncIterable<SourceEntry>,
  parent: Map<string, MappedFile>,
  references: MappedFile[],
): AsyncIterable<SourceEntry> {
  for await (const entry of entries) {
    if (entry.type !== 'file' || !entry.reopen) {
      yield entry;
      continue;
    }
    const path = manifestPath(archive, entry.path);
    const was = parent.get(path);
    if (was && was.size === entry.size && was.mtime === entry.mtime.getTime() && (await crcOf(entry.body)) === was.crc32c) {
      references.push({ ...was, path });
      continue;
    }
    // The body was read for the comparison (or not at all): a fresh one is stored.
    yield was && was.size === entry.size && was.mtime === entry.mtime.getTime() ? { ...entry, body: entry.reopen() } : entry;
  }
}
