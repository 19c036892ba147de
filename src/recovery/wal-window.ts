/**
 * What the WAL archive of the recovery source can replay: the timeline path to the target, the
 * last segment reachable without a gap from the backup's begin_wal, and so the recoverable window.
 * PostgreSQL reads segment N from the newest timeline of the path that had begun by N (the
 * segment holding a switch point comes from the child timeline), which is what is checked here.
 */
import { walsPrefix, WAL_NAME_RE } from '../catalog/layout.js';
import { splitCodecSuffix } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import { formatLsn, lsnOfSegno, parseLsn, parseSegmentName, segmentName, segnoOfLsn } from './lsn.js';
import type { RecoveryBackup } from './select-backup.js';

export interface ArchivedFile {
  key: string;
  size: number;
  lastModified?: Date;
}

export interface ArchiveInventory {
  /** segments[timeline][segno] */
  segments: Map<number, Map<bigint, ArchivedFile>>;
  histories: Map<number, ArchivedFile>;
}

/** Lists every WAL file under <server>/wals/ (segments and history files; .backup/.partial are not replayed). */
export async function listArchive(store: ObjectStore, serverName: string, segmentSize: number): Promise<ArchiveInventory> {
  const inv: ArchiveInventory = { segments: new Map(), histories: new Map() };
  for await (const entry of store.list(walsPrefix(serverName))) {
    const obj = entry.object;
    if (!obj) continue;
    const name = splitCodecSuffix(obj.key.slice(obj.key.lastIndexOf('/') + 1)).base;
    if (!WAL_NAME_RE.test(name)) continue;
    const file = { key: obj.key, size: obj.size, lastModified: obj.lastModified };
    if (name.endsWith('.history')) {
      inv.histories.set(parseInt(name.slice(0, 8), 16), file);
      continue;
    }
    const pos = parseSegmentName(name, segmentSize);
    if (!pos) continue;
    let tl = inv.segments.get(pos.timeline);
    if (!tl) inv.segments.set(pos.timeline, (tl = new Map()));
    tl.set(pos.segno, file);
  }
  return inv;
}

/** One timeline of the path and the LSN where it begins (0 for the first one). */
export interface TimelineStep {
  timeline: number;
  begin: bigint;
}

/** Parses a PostgreSQL timeline history file: "parentTLI<TAB>switchpoint<TAB>reason" lines. */
export function parseHistory(text: string, timeline: number): TimelineStep[] {
  const steps: TimelineStep[] = [];
  let begin = 0n;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [tli, lsn] = t.split(/\s+/);
    steps.push({ timeline: Number(tli), begin });
    begin = parseLsn(lsn);
  }
  steps.push({ timeline, begin });
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
  latestLsn?: bigint;
  /** When the last contiguous segment was stored: no commit in the archive is later than this. */
  latestTime?: Date;
  /** True when the contiguous run reaches end_wal: the backup can be made consistent. */
  coversBackupEnd: boolean;
  segmentsToReplay: number;
  bytesToReplay: number;
}

/** The timeline path PostgreSQL follows to `targetTimeline`, read from its history file. */
export async function timelinePath(store: ObjectStore, inv: ArchiveInventory, targetTimeline: number): Promise<TimelineStep[]> {
  if (targetTimeline === 1) return [{ timeline: 1, begin: 0n }];
  const file = inv.histories.get(targetTimeline);
  if (!file) {
    throw new UserError(
      `timeline ${targetTimeline} has no history file (${targetTimeline.toString(16).toUpperCase().padStart(8, '0')}.history) in the archive`,
      `archived timelines: ${[...inv.segments.keys()].sort((a, b) => a - b).join(', ') || 'none'}`,
    );
  }
  const { decompressBuffer } = await import('../codec/index.js');
  const raw = await store.getBuffer(file.key);
  const text = (await decompressBuffer(splitCodecSuffix(file.key).codec, raw)).toString('utf8');
  return parseHistory(text, targetTimeline);
}

/** "latest": the highest timeline with a history file (PostgreSQL's default since 12), or the backup's. */
export function latestTimeline(inv: ArchiveInventory, backupTimeline: number): number {
  return Math.max(backupTimeline, ...inv.histories.keys());
}

export function computeWindow(inv: ArchiveInventory, backup: RecoveryBackup, path: TimelineStep[]): ReplayWindow {
  const seg = backup.segmentSize;
  const targetTimeline = path[path.length - 1].timeline;
  const backupTimeline = backup.timeline ?? 1;
  const beginLsn = backup.beginLsn ?? segnoLsnOfName(backup.beginWal!, seg);
  const endLsn = backup.endLsn ?? segnoLsnOfName(backup.endWal!, seg);
  const stepIndex = path.findIndex((s) => s.timeline === backupTimeline);
  const nextBegin = stepIndex >= 0 && stepIndex + 1 < path.length ? path[stepIndex + 1].begin : undefined;
  if (stepIndex < 0 || (nextBegin !== undefined && nextBegin < endLsn)) {
    throw new UserError(
      `backup ${backup.backupId} (timeline ${backupTimeline}, ended at ${formatLsn(endLsn)}) is not in the history of timeline ${targetTimeline}`,
      `timeline ${targetTimeline} descends from ${path.map((s) => `${s.timeline}@${formatLsn(s.begin)}`).join(' -> ')}; pick a backup on that path or set recoveryTarget.targetTLI`,
    );
  }
  const timelineFor = (segno: bigint): number => {
    const start = lsnOfSegno(segno, seg);
    let tl = path[0].timeline;
    for (const s of path) if (segnoOfLsn(s.begin, seg) <= segnoOfLsn(start, seg)) tl = s.timeline;
    return tl;
  };
  const firstSegno = segnoOfLsn(beginLsn, seg);
  const endSegno = segnoOfLsn(endLsn === 0n ? 0n : endLsn - 1n, seg);
  let last: bigint | undefined;
  let lastFile: ArchivedFile | undefined;
  let bytes = 0;
  for (let n = firstSegno; ; n++) {
    const file = inv.segments.get(timelineFor(n))?.get(n);
    if (!file) break;
    last = n;
    lastFile = file;
    bytes += file.size;
  }
  const maxArchived = Math.max(-1, ...[...inv.segments.values()].flatMap((m) => [...m.keys()].map(Number)));
  const nextMissing = last === undefined ? firstSegno : last + 1n;
  const window: ReplayWindow = {
    targetTimeline,
    path,
    firstSegment: segmentName({ timeline: timelineFor(firstSegno), segno: firstSegno }, seg),
    backupEndSegment: segmentName({ timeline: timelineFor(endSegno), segno: endSegno }, seg),
    coversBackupEnd: last !== undefined && last >= endSegno,
    segmentsToReplay: last === undefined ? 0 : Number(last - firstSegno + 1n),
    bytesToReplay: bytes,
  };
  if (last !== undefined) {
    window.lastSegment = segmentName({ timeline: timelineFor(last), segno: last }, seg);
    window.lastSegmentFile = lastFile;
    window.latestLsn = lsnOfSegno(last + 1n, seg);
    window.latestTime = lastFile?.lastModified;
  }
  if (Number(nextMissing) <= maxArchived) window.gapAt = segmentName({ timeline: timelineFor(nextMissing), segno: nextMissing }, seg);
  return window;
}

function segnoLsnOfName(name: string, segmentSize: number): bigint {
  const pos = parseSegmentName(name, segmentSize);
  if (!pos) throw new RangeError(`not a WAL segment name: ${name}`);
  return lsnOfSegno(pos.segno, segmentSize);
}
