/**
 * The catalog as recovery sees it: backup.info files turned into RecoveryBackup facts, and the
 * objects (tars) of one backup in the order barman-cloud-restore extracts them (catalog/backup-objects.ts).
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import { listBackups } from '../catalog/catalog.js';
import { listIncrementals } from '../catalog/incremental.js';
import type { ObjectStore } from '../storage/types.js';
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
    parentBackupId: info.parent_backup_id ?? undefined,
  };
}

export async function loadBackups(store: ObjectStore, serverName: string): Promise<RecoveryBackup[]> {
  const [listing, incrementals] = await Promise.all([listBackups(store, serverName), listIncrementals(store, serverName)]);
  return [...listing.backups, ...incrementals.backups].map(toRecoveryBackup);
}

export { backupObjects, type BackupObject } from '../catalog/backup-objects.js';
