/**
 * The recoverability timeline as data (pure): backups, WAL coverage and gaps per timeline, timeline
 * switches, the retention window, the first and last recoverable points, verify runs and restore
 * drills, each placed in time. `pgark timeline --json` prints it and render.ts draws it.
 *
 * WAL has no times of its own, so positions (LSNs) are turned into times with anchors, per
 * timeline along its history path:
 *  - backup: a backup's begin_xlog/begin_time and end_xlog/end_time (exact);
 *  - history: a history file's mtime at its switch point (the promotion wrote it);
 *  - archived: a segment object's mtime at the segment's end (archive_command stores a segment
 *    once it is complete, so it is the time its last record was written, or a little after).
 * Backup and history anchors win; an mtime that contradicts them (an archive copied in bulk, a
 * clock jump) is dropped. Between anchors times are interpolated linearly by LSN; outside them a
 * time is unknown (null). Every time says which of these it came from.
 */
import type { BackupInfo } from '../catalog/backup-info.js';
import type { Catalog, KeepTarget } from '../catalog/catalog.js';
import { backupPrefix } from '../catalog/layout.js';
import { parseRetentionPolicy } from '../catalog/retention.js';
import { splitCodecSuffix } from '../codec/index.js';
import type { TimelineHistoryEntry } from '../pg/history.js';
import { formatLsn, parseLsn, type Lsn } from '../pg/lsn.js';
import { segmentNameAt } from '../pg/wal-names.js';
import type { DrillHistoryEntry } from '../drill/report.js';
import type { VerifyResult } from '../verify/report.js';
import { VERIFY_RESULT_VERSION } from '../verify/report.js';
import { latestTimeline, pathFromHistory, type ArchiveInventory, type TimelineStep } from '../wal/inventory.js';
import { computeWindow } from '../wal/replay-window.js';

export const TIMELINE_MODEL_VERSION = 1;

export type TimeSource = 'backup' | 'history' | 'archived' | 'interpolated' | 'unknown';

/** A WAL position and the time it was written, with where that time comes from. */
export interface TimePoint {
  lsn: string;
  /** ISO 8601, or null when no anchor brackets the position. */
  time: string | null;
  timeSource: TimeSource;
}

export interface WalCoverage {
  timeline: number;
  firstSegment: string;
  lastSegment: string;
  segments: number;
  /** Stored (compressed) bytes. */
  bytes: number;
  /**
   * Start of the first segment; when no anchor precedes it (the oldest WAL kept), the end of the
   * first segment, the earliest position of the range with a known time.
   */
  from: TimePoint;
  to: TimePoint;
}

export interface WalGapMark {
  timeline: number;
  /** First and last missing segment. */
  firstMissing: string;
  lastMissing: string;
  missing: number;
  /** The WAL the gap takes away: [start, end). */
  start: TimePoint;
  end: TimePoint;
}

export interface Lane {
  timeline: number;
  /** The timeline it branched from and where (null for timeline 1 or without a history file). */
  parent: number | null;
  switchPoint: TimePoint | null;
  reason: string | null;
  coverage: WalCoverage[];
  gaps: WalGapMark[];
}

export interface BackupRecoverability {
  /** WAL from begin_wal to end_wal is all archived: the backup can be made consistent. */
  consistent: boolean;
  /** The timeline a restore of it follows (the latest one whose history holds it). */
  targetTimeline: number;
  /** How far replay reaches without a gap (null when not consistent). */
  to: TimePoint | null;
  endsAt: 'end-of-archive' | 'gap' | 'not-consistent';
}

export interface BackupMark {
  backupId: string;
  backupName: string | null;
  status: BackupInfo['status'];
  timeline: number | null;
  beginTime: string | null;
  endTime: string | null;
  beginWal: string | null;
  endWal: string | null;
  beginLsn: string | null;
  endLsn: string | null;
  /** Size of the data directory (backup.info's size). */
  size: number | null;
  /** Bytes stored under base/<id>/. */
  storedBytes: number;
  /** Codec of data.tar (from its key's suffix). */
  codec: string | null;
  keep: KeepTarget | null;
  error: string | null;
  /** Only for DONE backups. */
  recoverability: BackupRecoverability | null;
}

export interface RecoverablePoint {
  time: string | null;
  timeSource: TimeSource;
  lsn: string;
  timeline: number;
  /** The backup it is reached from. */
  backupId: string;
}

export interface RecoverableSpan {
  from: string;
  to: string;
  /** Backups whose windows make up the span. */
  backups: string[];
}

export interface VerifyMark {
  key: string;
  at: string;
  ok: boolean;
  backups: string[];
  wal: boolean;
  gaps: number;
  problems: number;
}

export interface DrillMark {
  key: string;
  /** When the drill started (its id). */
  at: string;
  ok: boolean;
  rtoSeconds: number | null;
  /** What it recovered to, where replay stopped, and the step that failed. */
  target: string | null;
  recoveryPoint: string | null;
  failedStep: string | null;
}

export interface TimelineModel {
  version: typeof TIMELINE_MODEL_VERSION;
  serverName: string;
  store: string;
  generatedAt: string;
  /** What is shown: from --since (or the oldest fact) to now. */
  view: { from: string; to: string };
  segmentSize: number;
  /** How WAL positions got their times (see the sources in each TimePoint). */
  timeNote: string;
  retention: { policy: string; barman: string; days: number; windowStart: string } | null;
  lanes: Lane[];
  backups: BackupMark[];
  firstRecoverable: RecoverablePoint | null;
  lastRecoverable: RecoverablePoint | null;
  /** Times any consistent backup can be recovered to, merged. */
  recoverable: RecoverableSpan[];
  verifyRuns: VerifyMark[];
  drills: DrillMark[];
  /** Backups running, unreadable documents, timelines without history files. */
  notes: string[];
}

export interface HistoryInput {
  entries: TimelineHistoryEntry[];
  lastModified?: Date;
}

export interface TimelineInput {
  serverName: string;
  store: string;
  now: Date;
  /** Start of the view (--since); the oldest fact when absent. */
  since?: Date;
  retentionPolicy?: string;
  catalog: Pick<Catalog, 'backups' | 'objects' | 'keep' | 'unreadable' | 'running'>;
  archive: ArchiveInventory;
  /** Parsed history files by timeline. */
  histories: Map<number, HistoryInput>;
  segmentSize: number;
  verifyRuns: { key: string; result: VerifyResult }[];
  /** Past drills (drill/report.ts drillHistory), oldest first. */
  drills: DrillHistoryEntry[];
  /** What could not be read while loading. */
  notes: string[];
}

interface Anchor {
  lsn: Lsn;
  ms: number;
  source: 'backup' | 'history' | 'archived';
}

const DAY_MS = 86_400_000;
const MTIME_SLACK_MS = 1000;

/** LSN -> time for one timeline, from the anchors of its history path (see the header). */
class LsnClock {
  private readonly anchors: Anchor[];

  constructor(all: Anchor[]) {
    const byLsn = (a: Anchor, b: Anchor) => (a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : 0);
    const strong: Anchor[] = [];
    for (const a of all.filter((x) => x.source !== 'archived').sort(byLsn)) if (!strong.length || a.ms >= strong.at(-1)!.ms) strong.push(a);
    const weak = all.filter((x) => x.source === 'archived').sort(byLsn);
    this.anchors = [];
    let s = 0;
    for (const a of weak) {
      while (s < strong.length && strong[s].lsn <= a.lsn) this.anchors.push(strong[s++]);
      const prev = this.anchors.at(-1);
      const next = strong[s];
      if (prev?.lsn === a.lsn) continue;
      // S3 keeps whole seconds: an mtime up to one second before the previous anchor is that second.
      if ((!prev || a.ms >= prev.ms - MTIME_SLACK_MS) && (!next || a.ms <= next.ms)) this.anchors.push({ ...a, ms: Math.max(a.ms, prev?.ms ?? a.ms) });
    }
    this.anchors.push(...strong.slice(s));
  }

  at(lsn: Lsn): TimePoint {
    const a = this.anchors;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid].lsn < lsn) lo = mid + 1;
      else hi = mid;
    }
    const point = (ms: number | null, timeSource: TimeSource): TimePoint => ({ lsn: formatLsn(lsn), time: ms === null ? null : new Date(ms).toISOString(), timeSource });
    if (lo < a.length && a[lo].lsn === lsn) return point(a[lo].ms, a[lo].source);
    if (lo === 0 || lo === a.length) return point(null, 'unknown');
    const [p, n] = [a[lo - 1], a[lo]];
    return point(Math.round(p.ms + ((n.ms - p.ms) * Number(lsn - p.lsn)) / Number(n.lsn - p.lsn)), 'interpolated');
  }
}

const lsnOf = (text: string | null): Lsn | undefined => (text ? parseLsn(text) : undefined);

function pathOf(timeline: number, histories: Map<number, HistoryInput>): TimelineStep[] {
  const h = histories.get(timeline);
  return timeline === 1 || !h ? [{ timeline, begin: 0n }] : pathFromHistory(h.entries, timeline);
}

/** The anchors of one timeline's path: each step's own facts, up to where the next step began. */
function laneClock(path: TimelineStep[], input: TimelineInput): LsnClock {
  const anchors: Anchor[] = [];
  const seg = BigInt(input.segmentSize);
  path.forEach((step, i) => {
    const end = path[i + 1]?.begin;
    const inStep = (lsn: Lsn) => lsn >= step.begin && (end === undefined || lsn <= end);
    for (const b of input.catalog.backups) {
      if (b.timeline !== step.timeline) continue;
      for (const [lsn, time] of [[lsnOf(b.begin_xlog), b.begin_time], [lsnOf(b.end_xlog), b.end_time]] as const) {
        if (lsn !== undefined && time && inStep(lsn)) anchors.push({ lsn, ms: time.toDate().getTime(), source: 'backup' });
      }
    }
    for (const [n, file] of input.archive.segments.get(step.timeline) ?? []) {
      const segEnd = BigInt(n + 1) * seg;
      if (file.lastModified && segEnd > step.begin && inStep(segEnd)) anchors.push({ lsn: segEnd, ms: file.lastModified.getTime(), source: 'archived' });
    }
    const switched = input.histories.get(step.timeline)?.lastModified;
    if (i > 0 && switched) anchors.push({ lsn: step.begin, ms: switched.getTime(), source: 'history' });
  });
  return new LsnClock(anchors);
}

function laneOf(timeline: number, input: TimelineInput, clock: LsnClock): Lane {
  const seg = input.segmentSize;
  const h = input.histories.get(timeline);
  const parent = h?.entries.at(-1);
  const files = input.archive.segments.get(timeline) ?? new Map();
  const numbers = [...files.keys()].sort((a, b) => a - b);
  const lane: Lane = {
    timeline,
    parent: parent?.timeline ?? null,
    switchPoint: parent ? clock.at(parent.switchpoint) : null,
    reason: parent?.reason || null,
    coverage: [],
    gaps: [],
  };
  const at = (n: number) => clock.at(BigInt(n) * BigInt(seg));
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    let bytes = files.get(numbers[i])!.size;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) bytes += files.get(numbers[++j])!.size;
    lane.coverage.push({
      timeline,
      firstSegment: segmentNameAt(timeline, numbers[i], seg),
      lastSegment: segmentNameAt(timeline, numbers[j], seg),
      segments: j - i + 1,
      bytes,
      from: at(numbers[i]).time === null ? at(numbers[i] + 1) : at(numbers[i]),
      to: at(numbers[j] + 1),
    });
    if (j + 1 < numbers.length) {
      const first = numbers[j] + 1;
      const last = numbers[j + 1] - 1;
      lane.gaps.push({
        timeline,
        firstMissing: segmentNameAt(timeline, first, seg),
        lastMissing: segmentNameAt(timeline, last, seg),
        missing: last - first + 1,
        start: at(first),
        end: at(last + 1),
      });
    }
    i = j + 1;
  }
  return lane;
}

function codecOf(catalog: TimelineInput['catalog'], serverName: string, id: string): string | null {
  const prefix = backupPrefix(serverName, id);
  const data = (catalog.objects.get(id) ?? []).find((o) => splitCodecSuffix(o.key.slice(prefix.length)).base === 'data.tar');
  return data ? splitCodecSuffix(data.key.slice(prefix.length)).codec : null;
}

/** Where a restore of `b` reaches: along the latest timeline whose history holds it, else its own. */
function recoverabilityOf(b: BackupInfo, input: TimelineInput, clocks: Map<number, LsnClock>): BackupRecoverability {
  const replay = {
    backupId: b.backup_id,
    beginWal: b.begin_wal ?? undefined,
    endWal: b.end_wal ?? undefined,
    beginLsn: lsnOf(b.begin_xlog),
    endLsn: lsnOf(b.end_xlog),
    timeline: b.timeline ?? 1,
    segmentSize: input.segmentSize,
  };
  const own = b.timeline ?? 1;
  let target = latestTimeline(input.archive, own);
  let window;
  try {
    window = computeWindow(input.archive, replay, pathOf(target, input.histories));
  } catch {
    // Not in the latest timeline's history (a branch left behind): it recovers along its own.
    target = own;
    window = computeWindow(input.archive, replay, pathOf(own, input.histories));
  }
  if (!window.coversBackupEnd || window.latestLsn === undefined) return { consistent: false, targetTimeline: target, to: null, endsAt: 'not-consistent' };
  return { consistent: true, targetTimeline: target, to: clocks.get(target)!.at(window.latestLsn), endsAt: window.gapAt ? 'gap' : 'end-of-archive' };
}

function mergeSpans(spans: RecoverableSpan[]): RecoverableSpan[] {
  const out: RecoverableSpan[] = [];
  for (const s of [...spans].sort((a, b) => a.from.localeCompare(b.from))) {
    const last = out.at(-1);
    if (last && s.from <= last.to) {
      if (s.to > last.to) last.to = s.to;
      last.backups.push(...s.backups);
    } else out.push({ ...s, backups: [...s.backups] });
  }
  return out;
}

/** A drill id is its start time, compact (drill/report.ts drillId): 20261205T132000.123Z. */
function drillStart(id: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2}(?:\.\d+)?)Z$/.exec(id);
  const ms = m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : NaN;
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

const laterOf = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a > b ? a : b);

export function buildTimelineModel(input: TimelineInput): TimelineModel {
  const notes = [...input.notes];
  const timelines = new Set<number>([...input.archive.segments.keys(), ...input.histories.keys()]);
  for (const b of input.catalog.backups) if (b.timeline !== null) timelines.add(b.timeline);
  const clocks = new Map<number, LsnClock>();
  const lanes: Lane[] = [];
  for (const tl of [...timelines].sort((a, b) => a - b)) {
    if (tl !== 1 && !input.histories.has(tl)) notes.push(`timeline ${tl} has no readable history file: where it began is unknown`);
    const clock = laneClock(pathOf(tl, input.histories), input);
    clocks.set(tl, clock);
    lanes.push(laneOf(tl, input, clock));
  }

  const backups: BackupMark[] = input.catalog.backups.map((b) => ({
    backupId: b.backup_id,
    backupName: b.backup_name,
    status: b.status,
    timeline: b.timeline,
    beginTime: b.begin_time?.toDate().toISOString() ?? null,
    endTime: b.end_time?.toDate().toISOString() ?? null,
    beginWal: b.begin_wal,
    endWal: b.end_wal,
    beginLsn: b.begin_xlog,
    endLsn: b.end_xlog,
    size: b.size,
    storedBytes: (input.catalog.objects.get(b.backup_id) ?? []).reduce((n, o) => n + o.size, 0),
    codec: codecOf(input.catalog, input.serverName, b.backup_id),
    keep: input.catalog.keep.get(b.backup_id) ?? null,
    error: b.error,
    recoverability: b.status === 'DONE' && b.begin_xlog && b.end_xlog ? recoverabilityOf(b, input, clocks) : null,
  }));
  for (const u of input.catalog.unreadable) notes.push(`backup ${u.backupId}: backup.info cannot be read (${u.error})`);
  for (const r of input.catalog.running) notes.push(`backup ${r.backupId} is running`);

  let firstRecoverable: RecoverablePoint | null = null;
  let lastRecoverable: RecoverablePoint | null = null;
  const spans: RecoverableSpan[] = [];
  for (const b of backups) {
    const r = b.recoverability;
    if (!r?.consistent || !r.to || !b.endTime || !b.endLsn) continue;
    if (!firstRecoverable || b.endTime < firstRecoverable.time!) {
      firstRecoverable = { time: b.endTime, timeSource: 'backup', lsn: b.endLsn, timeline: b.timeline ?? 1, backupId: b.backupId };
    }
    if (!lastRecoverable || parseLsn(r.to.lsn) > parseLsn(lastRecoverable.lsn)) {
      lastRecoverable = { time: r.to.time, timeSource: r.to.timeSource, lsn: r.to.lsn, timeline: r.targetTimeline, backupId: b.backupId };
    }
    if (r.to.time) spans.push({ from: b.endTime, to: laterOf(r.to.time, b.endTime)!, backups: [b.backupId] });
  }

  const verifyRuns: VerifyMark[] = [];
  for (const { key, result } of input.verifyRuns) {
    if (result.version !== VERIFY_RESULT_VERSION) {
      notes.push(`${key}: verify result version ${String(result.version)} is not known (expected ${VERIFY_RESULT_VERSION}); left out`);
      continue;
    }
    verifyRuns.push({
      key,
      at: result.finishedAt,
      ok: result.ok,
      backups: result.backups.map((b) => b.backupId),
      wal: result.wal !== null,
      gaps: result.wal?.gaps.length ?? 0,
      problems: result.problems.length,
    });
  }
  const drills: DrillMark[] = [];
  for (const d of input.drills) {
    const at = drillStart(d.id);
    if (d.ok === null || at === undefined) {
      notes.push(`${d.key}: not a drill report this pgark reads (${d.unreadable ?? 'its name is not a time'}); left out`);
      continue;
    }
    drills.push({ key: d.key, at, ok: d.ok, rtoSeconds: d.rtoSeconds, target: d.target, recoveryPoint: d.recoveryPoint, failedStep: d.failedStep });
  }

  const policy = input.retentionPolicy ? parseRetentionPolicy(input.retentionPolicy) : undefined;
  const retention = policy
    ? { policy: policy.text, barman: policy.barman, days: policy.days, windowStart: new Date(input.now.getTime() - policy.days * DAY_MS).toISOString() }
    : null;

  const now = input.now.toISOString();
  const from = input.since?.toISOString() ?? oldestFact(lanes, backups, verifyRuns, drills) ?? new Date(input.now.getTime() - DAY_MS).toISOString();
  const inView = (t: string | null) => t === null || t >= from;
  return {
    version: TIMELINE_MODEL_VERSION,
    serverName: input.serverName,
    store: input.store,
    generatedAt: now,
    view: { from, to: now },
    segmentSize: input.segmentSize,
    timeNote:
      'WAL positions get their times from backups (begin/end), history files (switch points) and the stored mtime of each segment (archive time), interpolated by LSN in between; a segment mtime that contradicts a backup is ignored',
    retention,
    lanes: lanes.map((l) => ({ ...l, coverage: l.coverage.filter((c) => inView(c.to.time)), gaps: l.gaps.filter((g) => inView(g.end.time)) })),
    backups: backups.filter((b) => inView(b.endTime ?? b.beginTime)),
    firstRecoverable,
    lastRecoverable,
    recoverable: mergeSpans(spans).filter((s) => s.to >= from),
    verifyRuns: verifyRuns.filter((v) => v.at >= from),
    drills: drills.filter((d) => d.at >= from),
    notes,
  };
}

/** The earliest time the model knows (start of the view when --since is not given). */
function oldestFact(lanes: Lane[], backups: BackupMark[], verify: VerifyMark[], drills: DrillMark[]): string | undefined {
  const times = [
    ...lanes.flatMap((l) => [...l.coverage.map((c) => c.from.time), l.switchPoint?.time ?? null]),
    ...backups.map((b) => b.beginTime ?? b.endTime),
    ...verify.map((v) => v.at),
    ...drills.map((d) => d.at),
  ].filter((t): t is string => t !== null);
  return times.sort()[0];
}
