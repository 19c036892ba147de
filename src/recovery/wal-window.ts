/**
 * What the WAL archive of the recovery source can replay: the timeline path to the target, the
 * last segment reachable without a gap from the backup's begin_wal, and so the recoverable window.
 * PostgreSQL reads segment N from the newest timeline of the path that had begun by N (the
 * segment holding a switch point comes from the child timeline), which is what is checked here.
 */
import { decodeBuffer, splitCodecSuffix, type AgeKeys } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import { parseHistoryFile } from '../pg/history.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';
import { formatSegmentName, parseWalName, segmentFromNumber, segmentNumber } from '../pg/wal-names.js';
import { archivedWalFiles } from '../wal/list.js';
import type { RecoveryBackup } from './select-backup.js';

export interface ArchivedFile {
  key: string;
  size: number;
  lastModified?: Date;
}

export interface ArchiveInventory {
  /** segments[timeline][segment number] */
  segments: Map<number, Map<number, ArchivedFile>>;
  histories: Map<number, ArchivedFile>;
}

/** Lists every WAL file under <server>/wals/ (segments and history files; .backup/.partial are not replayed). */
export async function listArchive(store: ObjectStore, serverName: string, segmentSize: number): Promise<ArchiveInventory> {
  const inv: ArchiveInventory = { segments: new Map(), histories: new Map() };
  for await (const wal of archivedWalFiles(store, serverName)) {
    const file = { key: wal.key, size: wal.size, lastModified: wal.lastModified };
    if (wal.kind === 'history') {
      inv.histories.set(wal.timeline, file);
      continue;
    }
    // Throws for a name that cannot exist with this segment size: the archive is not this cluster's.
    const parsed = parseWalName(wal.name, segmentSize);
    if (parsed.kind !== 'segment' || !parsed.segment) continue;
    let tl = inv.segments.get(parsed.timeline);
    if (!tl) inv.segments.set(parsed.timeline, (tl = new Map()));
    tl.set(segmentNumber(parsed.segment, segmentSize), file);
  }
  return inv;
}

/** One timeline of the path and the LSN where it begins (0 for the first one). */
export interface TimelineStep {
  timeline: number;
  begin: Lsn;
}

/** The path to `timeline` from its history file: each ancestor from where it began, then `timeline` itself. */
export function historyPath(text: string, timeline: number): TimelineStep[] {
  const entries = parseHistoryFile(text, `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`);
  const steps = entries.map((e, i) => ({ timeline: e.timeline, begin: i === 0 ? 0n : entries[i - 1].switchpoint }));
  steps.push({ timeline, begin: entries.length ? entries[entries.length - 1].switchpoint : 0n });
  return steps;
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

/** The timeline path PostgreSQL follows to `targetTimeline`, read from its history file. */
export async function timelinePath(store: ObjectStore, inv: ArchiveInventory, targetTimeline: number, age?: AgeKeys): Promise<TimelineStep[]> {
  if (targetTimeline === 1) return [{ timeline: 1, begin: 0n }];
  const file = inv.histories.get(targetTimeline);
  if (!file) {
    throw new UserError(
      `timeline ${targetTimeline} has no history file (${targetTimeline.toString(16).toUpperCase().padStart(8, '0')}.history) in the archive`,
      `archived timelines: ${[...inv.segments.keys()].sort((a, b) => a - b).join(', ') || 'none'}`,
    );
  }
  const raw = await store.getBuffer(file.key);
  const text = (await decodeBuffer(splitCodecSuffix(file.key), raw, age, file.key)).toString('utf8');
  return historyPath(text, targetTimeline);
}

/** "latest": the highest timeline with a history file (PostgreSQL's default since 12), or the backup's. */
export function latestTimeline(inv: ArchiveInventory, backupTimeline: number): number {
  return Math.max(backupTimeline, ...inv.histories.keys());
}

export function computeWindow(inv: ArchiveInventory, backup: RecoveryBackup, path: TimelineStep[]): ReplayWindow {
  const segSize = backup.segmentSize;
  const segnoOf = (lsn: Lsn) => Number(lsn / BigInt(segSize));
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
  // PostgreSQL reads a segment from the newest timeline of the path that had begun by its start.
  function timelineFor(segno: number): number {
    let tl = path[0].timeline;
    for (const s of path) if (segnoOf(s.begin) <= segno) tl = s.timeline;
    return tl;
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
