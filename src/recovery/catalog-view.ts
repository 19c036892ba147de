/**
 * The catalog as recovery sees it: backup.info files turned into RecoveryBackup facts, and the
 * objects (tars) of one backup in the order barman-cloud-restore extracts them.
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import { listBackups } from '../catalog/catalog.js';
import { backupPrefix } from '../catalog/layout.js';
import { splitCodecSuffix, type CodecName } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { PgarkError } from '../util/errors.js';
import { parseLsn } from '../pg/lsn.js';
import type { RecoveryBackup } from './select-backup.js';

export function toRecoveryBackup(info: BackupInfo): RecoveryBackup {
  return {
    backupId: info.backup_id,
    backupName: info.backup_name ?? undefined,
    status: info.status,
    beginTime: info.begin_time?.toDate(),
    endTime: info.end_time?.toDate(),
    beginWal: info.begin_wal ?? undefined,
    endWal: info.end_wal ?? undefined,
    beginLsn: info.begin_xlog ? parseLsn(info.begin_xlog) : undefined,
    endLsn: info.end_xlog ? parseLsn(info.end_xlog) : undefined,
    timeline: info.timeline ?? undefined,
    version: info.version ?? undefined,
    systemId: info.systemid ?? undefined,
    segmentSize: info.xlog_segment_size,
    tablespaces: info.tablespaces ?? [],
    objectSha256: info.pgark_object_sha256,
  };
}

export async function loadBackups(store: ObjectStore, serverName: string): Promise<RecoveryBackup[]> {
  const listing = await listBackups(store, serverName);
  return listing.backups.map(toRecoveryBackup);
}

export interface BackupObject {
  key: string;
  /** The key below the backup's folder, e.g. data.tar.gz. */
  name: string;
  size: number;
  codec: CodecName;
  encrypted: boolean;
  /** 'data' or the tablespace oid. */
  base: string;
  /** 0 for the main tar, N for the _000N extra part. */
  part: number;
}

const TAR_RE = /^(data|\d+)(?:_(\d{4}))?\.tar$/;

/** Every tar of a backup, data first, then tablespaces by oid; parts in order. */
export async function backupObjects(store: ObjectStore, serverName: string, backup: RecoveryBackup): Promise<BackupObject[]> {
  const prefix = backupPrefix(serverName, backup.backupId);
  const found: BackupObject[] = [];
  for await (const entry of store.list(prefix)) {
    if (!entry.object) continue;
    const name = entry.object.key.slice(prefix.length);
    if (name.includes('/')) continue;
    const { base, codec, encrypted } = splitCodecSuffix(name);
    const m = TAR_RE.exec(base);
    if (!m) continue;
    found.push({ key: entry.object.key, name, size: entry.object.size, codec, encrypted, base: m[1], part: m[2] ? Number(m[2]) : 0 });
  }
  const bases = ['data', ...backup.tablespaces.map((t) => String(t.oid))];
  for (const b of bases) {
    if (!found.some((o) => o.base === b && o.part === 0)) {
      throw new PgarkError(`backup ${backup.backupId} is incomplete: ${prefix}${b}.tar[.gz|.bz2|.snappy|...] is missing`, 1);
    }
  }
  return found
    .filter((o) => bases.includes(o.base))
    .sort((a, b) => bases.indexOf(a.base) - bases.indexOf(b.base) || a.part - b.part);
}
