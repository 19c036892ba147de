/**
 * Restoring an incremental backup: its flattened file map names, for every file, the backup of
 * the chain whose tars hold its bytes, and for a file stored block by block the holder of each
 * block. Each member's tars are extracted with a filter that takes only the files that member
 * holds whole, and a placement that writes, at their offsets, only the blocks it holds of the
 * others (from its whole copy or from its block members): the members' tars write disjoint bytes
 * and download.ts extracts them all at once, in parallel and streaming, as it does the tars of one
 * full backup; each block is written once, from the newest backup holding it. The incremental
 * itself also gives the directories, links, backup_label and the backup_manifest listing every
 * file of the chain, which the usual manifest check then compares with what was written (a file
 * written in blocks is read back whole for it): a file missing from, or wrong in, any member fails
 * the restore.
 */
import { createReadStream, constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Crc32c } from '../io/hash.js';
import type { ObjectStore } from '../storage/types.js';
import { blockHolders, chainOf, filesByHolder, parseBlockEntry, prefixOf, readFileMap, type MappedFile, type Placement } from '../catalog/incremental.js';
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
  const held = filesByHolder(map, chain.map((m) => ({ backup_id: m.backupId })));
  const byPath = new Map(map.files.map((f) => [f.path, f]));
  const holders = new BlockHolders();
  const objects: BackupObject[] = [];
  let digests: Record<string, string> | undefined = {};
  for (const member of chain) {
    const own = member.backupId === backup.backupId;
    const mine = held.get(member.backupId)!;
    if (!own && mine.size === 0) continue;
    const prefix = prefixOf(serverName, { backup_id: member.backupId, parent_backup_id: member.parentBackupId ?? null });
    for (const o of await backupObjects(store, serverName, member, prefix)) {
      const under = o.base === 'data' ? '' : `pg_tblspc/${o.base}/`;
      const whole = (p: string) => mine.has(under + p) && !byPath.get(under + p)!.blocks?.runs;
      // The incremental also takes what no map lists (links, backup_label, backup_manifest); the others only their files.
      const accept = own ? (p: string) => whole(p) || (!byPath.has(under + p) && !parseBlockEntry(p)) : whole;
      const place = (p: string) => holders.placement(p, under, member.backupId, byPath);
      const name = own ? o.name : `${member.backupId}/${o.name}`;
      objects.push({ ...o, name, accept, place });
      const sha = member.objectSha256?.[o.name];
      if (digests && sha) digests[name] = sha;
      else digests = undefined;
    }
  }
  return { objects, objectSha256: digests };
}

/** The holder of each block of the files stored block by block, expanded once per file. */
class BlockHolders {
  private readonly expanded = new Map<string, string[]>();

  /** Where a member's entry `p` (a whole file or a block member) goes, when the file is stored block by block. */
  placement(p: string, under: string, member: string, byPath: ReadonlyMap<string, MappedFile>): Placement | undefined {
    const block = parseBlockEntry(p);
    const path = block ? block.path : p;
    const file = byPath.get(under + path);
    if (!file?.blocks?.runs) return undefined;
    let perBlock = this.expanded.get(file.path);
    if (!perBlock) this.expanded.set(file.path, (perBlock = blockHolders(file)));
    const blockSize = file.blocks.size;
    const first = block ? block.block : 0;
    const at = perBlock;
    return { path, offset: first * blockSize, size: file.size, blockSize, keep: (b) => at[b] === member && (!block || b === first) };
  }
}

/** Writes a tar member's bytes at `placement.offset`, only the blocks it keeps, into a file other members write too. */
export async function writePlaced(body: AsyncIterable<Uint8Array>, dest: string, mode: number, placement: Placement): Promise<void> {
  // No O_TRUNC: the other members' blocks may already be in; each sets the same final size.
  const handle = await open(dest, constants.O_WRONLY | constants.O_CREAT, mode);
  try {
    await handle.truncate(placement.size);
    let at = placement.offset;
    for await (const raw of body) {
      const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      let from = 0;
      while (from < chunk.length) {
        const block = Math.floor(at / placement.blockSize);
        const end = Math.min(chunk.length, from + (block + 1) * placement.blockSize - at);
        if (placement.keep(block) && at < placement.size) {
          const piece = chunk.subarray(from, Math.min(end, from + placement.size - at));
          for (let done = 0; done < piece.length; ) done += (await handle.write(piece, done, piece.length - done, at + done)).bytesWritten;
        }
        at += end - from;
        from = end;
      }
    }
  } finally {
    await handle.close();
  }
}

/** Size and CRC-32C of a file as it is on disk. */
export async function checksumFile(path: string): Promise<{ size: number; crc32c: number }> {
  const crc = new Crc32c();
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    crc.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, crc32c: crc.digest() };
}
