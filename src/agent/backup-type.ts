/**
 * The type of a scheduled backup under its ScheduledBackup's rotation (config/backup-rotation.ts):
 * incremental, except full when no DONE full backup exists yet or the newest one is older than
 * pgark.io/full-every, so that chains stay short and retention can expire the old ones whole.
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import type { BackupRotation } from '../config/backup-rotation.js';

/** `fulls`: the full backups of the catalog (listBackups), any status. */
export function scheduledBackupType(rotation: BackupRotation, fulls: readonly BackupInfo[], now: Date): 'full' | 'incremental' {
  if (rotation.type === 'full') return 'full';
  const newest = fulls.filter((b) => b.status === 'DONE').sort((a, b) => a.backup_id.localeCompare(b.backup_id)).at(-1);
  if (!newest) return 'full';
  if (rotation.fullEveryMs === undefined) return 'incremental';
  const at = (newest.end_time ?? newest.begin_time)?.toDate();
  return !at || now.getTime() - at.getTime() >= rotation.fullEveryMs ? 'full' : 'incremental';
}
