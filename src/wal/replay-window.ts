/**
 * What the WAL archive can replay from one backup: the timeline path to the target, the last
 * segment reachable without a gap from the backup's begin_wal, and so the recoverable window.
 * PostgreSQL reads segment N from the newest timeline of the path that had begun by N (the
 * segment holding a switch point comes from the child timeline), which is what is checked here.
 * Recovery plans a restore with it; the recoverability timeline draws every backup's window.
 */
import { UserError } from '../util/errors.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';
import { formatSegmentName, parseWalName, segmentFromNumber, segmentNumber } from '../pg/wal-names.js';
import { timelineForSegment, type ArchivedFile, type ArchiveInventory, type TimelineStep } from './inventory.js';

/** The facts of a backup the window needs (recovery's RecoveryBackup has them). */
export interface ReplayBackup {
  backupId: string;
  beginWal?: string;
  endWal?: string;
  beginLsn?: bigint;
  endLsn?: bigint;
  timeline?: number;
  segmentSize: number;
}

export interface ReplayWindow {
  targetTimeline: number;
  path: TimelineStep[];
  /** WAL the recovery needs at least: begin_wal .. end_wal of the backup. */
  firstSegment: string;
  backupEndSegment: string;
  /** Last segment reachable from the backup without a gap (undefined when begin_wal itself is missing). */
  lastSegment?: string;
  lastSegmentFile?: ArchivedFile;
  /** First segment that is missing after the contiguous run, if any exists later in the archive. */
  gapAt?: string;
  /** End of the last contiguous segment: replay cannot go past it. */
  latestLsn?: Lsn;
  /** When the last contiguous segment was stored: no commit in the archive is later than this. */
  latestTime?: Date;
  /** True when the contiguous run reaches end_wal: the backup can be made consistent. */
  coversBackupEnd: boolean;
  segmentsToReplay: number;
  bytesToReplay: number;
}

export function computeWindow(inv: ArchiveInventory, backup: ReplayBackup, path: TimelineStep[]): ReplayWindow {
  const segSize = backup.segmentSize;
  const segnoOf = (lsn: Lsn) => Number(lsn / BigInt(segSize));
  // PostgreSQL reads a segment from the newest timeline of the path that had begun by its start.
  const timelineFor = (segno: number) => timelineForSegment(path, segno, segSize);
  const nameOf = (segno: number) => formatSegmentName(segmentFromNumber(timelineFor(segno), segno, segSize));
  const targetTimeline = path[path.length - 1].timeline;
  const backupTimeline = backup.timeline ?? 1;
  const beginLsn = backup.beginLsn ?? startOfSegment(backup.beginWal!, segSize);
  const endLsn = backup.endLsn ?? startOfSegment(backup.endWal!, segSize);
  const stepIndex = path.findIndex((s) => s.timeline === backupTimeline);
  const nextBegin = stepIndex >= 0 && stepIndex + 1 < path.length ? path[stepIndex + 1].begin : undefined;
  if (stepIndex < 0 || (nextBegin !== undefined && nextBegin < endLsn)) {
    throw new UserError(
      `backup ${backup.backupId} (timeline ${backupTimeline}, ended at ${formatLsn(endLsn)}) is not in the history of timeline ${targetTimeline}`,
      `timeline ${targetTimeline} descends from ${path.map((s) => `${s.timeline}@${formatLsn(s.begin)}`).join(' -> ')}; pick a backup on that path or set recoveryTarget.targetTLI`,
    );
  }
  const firstSegno = segnoOf(beginLsn);
  const endSegno = segnoOf(endLsn === 0n ? 0n : endLsn - 1n);
  let last: number | undefined;
  let lastFile: ArchivedFile | undefined;
  let bytes = 0;
  for (let n = firstSegno; ; n++) {
    const file = inv.segments.get(timelineFor(n))?.get(n);
    if (!file) break;
    last = n;
    lastFile = file;
    bytes += file.size;
  }
  const onPath = new Set(path.map((s) => s.timeline));
  const maxArchived = Math.max(-1, ...[...inv.segments].filter(([tl]) => onPath.has(tl)).flatMap(([, m]) => [...m.keys()]));
  const nextMissing = last === undefined ? firstSegno : last + 1;
  const window: ReplayWindow = {
    targetTimeline,
    path,
    firstSegment: nameOf(firstSegno),
    backupEndSegment: nameOf(endSegno),
    coversBackupEnd: last !== undefined && last >= endSegno,
    segmentsToReplay: last === undefined ? 0 : last - firstSegno + 1,
    bytesToReplay: bytes,
  };
  if (last !== undefined) {
    window.lastSegment = nameOf(last);
    window.lastSegmentFile = lastFile;
    window.latestLsn = BigInt(last + 1) * BigInt(segSize);
    window.latestTime = lastFile?.lastModified;
  }
  if (nextMissing <= maxArchived) window.gapAt = nameOf(nextMissing);
  return window;
}

function startOfSegment(name: string, segSize: number): Lsn {
  const parsed = parseWalName(name, segSize);
  if (!parsed.segment) throw new RangeError(`not a WAL segment name: ${name}`);
  return BigInt(segmentNumber(parsed.segment, segSize)) * BigInt(segSize);
}
