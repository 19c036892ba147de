/**
 * Which base backup a recovery starts from (CNPG catalog.FindBackupInfo, stricter: only backups
 * whose status is DONE are candidates, where CNPG accepts any backup with both times set).
 *   recoveryTarget.backupID      -> that backup;
 *   targetTime                   -> newest backup with end_time <= targetTime on the requested timeline;
 *   targetLSN                    -> newest backup with end_xlog < targetLSN on the requested timeline;
 *   otherwise                    -> newest backup on the requested timeline (any, without a recoveryTarget).
 */
import { UserError } from '../util/errors.js';
import { formatLsn } from '../pg/lsn.js';
import type { ParsedTarget } from './target.js';

/** The catalog facts recovery needs about one backup. */
export interface RecoveryBackup {
  backupId: string;
  backupName?: string;
  status: string;
  beginTime?: Date;
  endTime?: Date;
  beginWal?: string;
  endWal?: string;
  beginLsn?: bigint;
  endLsn?: bigint;
  timeline?: number;
  /** server_version_num, e.g. 150004. */
  version?: number;
  systemId?: string;
  segmentSize: number;
  tablespaces: { name: string; oid: number; location: string }[];
  /** SHA-256 of each stored tar by name below the backup's folder (pgark backups; none from barman-cloud). */
  objectSha256?: Record<string, string>;
  /** Set for a pgark incremental backup: the backup it is incremental to (recovery/chain.ts). */
  parentBackupId?: string;
}

export interface BackupChoice {
  backup: RecoveryBackup;
  /** Why this one, for the plan. */
  reason: string;
}

function timelineMatches(b: RecoveryBackup, timeline: ParsedTarget['timeline']): boolean {
  return timeline === undefined || timeline === 'latest' || b.timeline === timeline;
}

/** Oldest first, as barman sorts its catalog (backup IDs are start timestamps). */
function chronological(backups: RecoveryBackup[]): RecoveryBackup[] {
  return [...backups].sort(
    (a, b) => (a.beginTime?.getTime() ?? 0) - (b.beginTime?.getTime() ?? 0) || a.backupId.localeCompare(b.backupId),
  );
}

/** "20240101T000000 DONE tl1 ended 2024-01-01T00:00:05Z" lines for error messages. */
export function describeBackups(backups: RecoveryBackup[]): string {
  if (backups.length === 0) return 'the catalog holds no backups';
  return chronological(backups)
    .map((b) => {
      const name = b.backupName ? ` (${b.backupName})` : '';
      const end = b.endTime ? ` ended ${b.endTime.toISOString()}` : '';
      const lsn = b.endLsn !== undefined ? ` at ${formatLsn(b.endLsn)}` : '';
      return `  ${b.backupId}${name} ${b.status} timeline ${b.timeline ?? '?'}${end}${lsn}`;
    })
    .join('\n');
}

export function selectBackup(backups: RecoveryBackup[], target: ParsedTarget, hasRecoveryTarget: boolean, where: string): BackupChoice {
  const inventory = `backups in ${where}:\n${describeBackups(backups)}`;
  if (target.backupID) {
    const b = backups.find((x) => x.backupId === target.backupID);
    if (!b) throw new UserError(`no backup with ID "${target.backupID}" in ${where}`, inventory);
    if (b.status !== 'DONE') throw new UserError(`backup ${b.backupId} in ${where} has status ${b.status}; only DONE backups can be restored`, inventory);
    return { backup: b, reason: `recoveryTarget.backupID names it` };
  }
  const done = chronological(backups).filter((b) => b.status === 'DONE').reverse();
  const onTimeline = done.filter((b) => !hasRecoveryTarget || timelineMatches(b, target.timeline));
  const tlText = target.timeline === undefined || target.timeline === 'latest' ? '' : ` on timeline ${target.timeline}`;
  let chosen: RecoveryBackup | undefined;
  let reason: string;
  if (hasRecoveryTarget && target.kind === 'time') {
    chosen = onTimeline.find((b) => b.endTime && b.endTime.getTime() <= target.time!.getTime());
    reason = `newest DONE backup${tlText} that ended before the target time`;
    if (!chosen) {
      throw new UserError(
        `no DONE backup${tlText} ended before targetTime ${target.value} (${target.time!.toISOString()}) in ${where}`,
        `a point in time is recoverable only after the end of some backup; ${inventory}`,
      );
    }
  } else if (hasRecoveryTarget && target.kind === 'lsn') {
    chosen = onTimeline.find((b) => b.endLsn !== undefined && b.endLsn < target.lsn!);
    reason = `newest DONE backup${tlText} that ended before the target LSN`;
    if (!chosen) {
      throw new UserError(`no DONE backup${tlText} ended before targetLSN ${target.value} in ${where}`, `a position is recoverable only after the end of some backup; ${inventory}`);
    }
  } else {
    chosen = onTimeline[0];
    reason = `newest DONE backup${tlText}`;
    if (!chosen) throw new UserError(`no DONE backup${tlText} in ${where}`, inventory);
  }
  return { backup: chosen, reason };
}
