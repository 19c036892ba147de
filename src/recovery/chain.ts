/**
 * Restoring an incremental backup: its flattened file map names, for every file, the backup of
 * the chain whose tars hold its bytes. Each member's tars are extracted with a filter that takes
 * only the files that member holds, so the members' tars write disjoint files and download.ts
 * extracts them all at once, in parallel and streaming, as it does the tars of one full backup.
 * The incremental itself also gives the directories, links, backup_label and the backup_manifest
 * listing every file of the chain, which the usual manifest check then compares with what was
 * written: a file missing from, or wrong in, any member fails the restore.
 */
import type { ObjectStore } from '../storage/types.js';
import { chainOf, prefixOf, readFileMap } from '../catalog/incremental.js';
import { backupObjects, type BackupObject } from './catalog-view.js';
import type { RecoveryBackup } from './select-backup.js';
import { PgarkError } from '../util/errors.js';

/** The chain's RecoveryBackup facts under the catalog's key names (chainOf walks barman's ids). */
function asChainLink(b: RecoveryBackup): { backup_id: string; parent_backup_id: string | null; backup: RecoveryBackup } {
  return { backup_id: b.backupId, parent_backup_id: b.parentBackupId ?? null, backup: b };
}

export interface ChainRestore {
  objects: BackupObject[];
  /** The digests of every member's tars, by the names `objects` carry. */
  objectSha256?: Record<string, string>;
}

/** The objects to extract for `backup` (an incremental): every tar of every chain member that holds a file. */
export async function chainObjects(store: ObjectStore, serverName: string, backup: RecoveryBackup, all: RecoveryBackup[]): Promise<ChainRestore> {
  const chain = chainOf(backup.backupId, all.map(asChainLink)).map((l) => l.backup);
  for (const member of chain) {
    if (member.status !== 'DONE') throw new PgarkError(`backup ${backup.backupId} needs ${member.backupId} of its chain, whose status is ${member.status}`, 1, 'restore another backup');
  }
  const map = await readFileMap(store, serverName, { backup_id: backup.backupId, parent_backup_id: backup.parentBackupId ?? null });
  if (!map) throw new PgarkError(`incremental backup ${backup.backupId} has no file map`, 1, 'restore another backup');
  const held = new Map<string, Set<string>>(chain.map((m) => [m.backupId, new Set()]));
  for (const f of map.files) {
    const set = held.get(f.holder);
    if (!set) throw new PgarkError(`the file map of ${backup.backupId} names ${f.holder} as the holder of ${f.path}, which is not in its chain`, 1);
    set.add(f.path);
  }
  const mapped = new Set(map.files.map((f) => f.path));
  const objects: BackupObject[] = [];
  let digests: Record<string, string> | undefined = {};
  for (const member of chain) {
    const own = member.backupId === backup.backupId;
    const mine = held.get(member.backupId)!;
    if (!own && mine.size === 0) continue;
    const prefix = prefixOf(serverName, { backup_id: member.backupId, parent_backup_id: member.parentBackupId ?? null });
    for (const o of await backupObjects(store, serverName, member, prefix)) {
      const under = o.base === 'data' ? '' : `pg_tblspc/${o.base}/`;
      // The incremental also takes what no map lists (links, backup_label, backup_manifest); the others only their files.
      const accept = own ? (p: string) => mine.has(under + p) || !mapped.has(under + p) : (p: string) => mine.has(under + p);
      const name = own ? o.name : `${member.backupId}/${o.name}`;
      objects.push({ ...o, name, accept });
      const sha = member.objectSha256?.[o.name];
      if (digests && sha) digests[name] = sha;
      else digests = undefined;
    }
  }
  return { objects, objectSha256: digests };
}
