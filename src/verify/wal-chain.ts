/**
 * The WAL chain of chosen backups: from each backup's begin_wal along the timeline path recovery
 * would follow (wal/inventory.ts, the same path and segment-to-timeline rule as restore's window),
 * to the newest archived segment. Every segment the chain needs must be there, decode with its
 * codec and pass its page-header check (wal-pages.ts); history files must agree with each other
 * and with the backups' timelines. Missing segments are reported as ranges, and each backup gets
 * the window it can still be recovered to: from its end to the first missing or bad segment.
 */
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mapLimit } from '../catalog/catalog.js';
import { backupInfoKey, walKey } from '../catalog/layout.js';
import { assertDecodable, decodeStreams, splitCodecSuffix, type AgeKeys } from '../codec/index.js';
import type { TimelineHistoryEntry } from '../pg/history.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';
import { compareWalNames, historyFileName, segmentNameAt } from '../pg/wal-names.js';
import type { ObjectStore } from '../storage/types.js';
import { listArchive, pathFromHistory, readHistory, timelineForSegment, latestTimeline, type ArchivedFile, type ArchiveInventory, type TimelineStep } from '../wal/inventory.js';
import type { Problem, RecoverableWindow, WalGapResult, WalResult } from './report.js';
import { SegmentPageCheck } from './wal-pages.js';

export interface ChainBackup {
  backupId: string;
  serverName: string;
  timeline: number;
  beginLsn: Lsn;
  endLsn: Lsn;
  endTime: string | null;
  systemId: string | null;
  major: number | undefined;
  segmentSize: number;
}

export interface ChainOptions {
  jobs: number;
  counter: () => Transform;
  /** --since-last: per timeline (decimal text), the last segment a good run read; those up to it are listed, not read again. */
  readAfter?: Record<string, string>;
  /** The store's age keys, for encrypted segments and history files. */
  age?: AgeKeys;
}

export interface ChainResult extends WalResult {
  objectsRead: number;
  bytesRead: number;
  /** The newest segment of the chain per timeline, for the next --since-last run. */
  lastSegments: Record<string, string>;
}

/** One position of a chain: the segment it reads there, and its key when the archive has it. */
interface Run {
  segno: number;
  timeline: number;
  key?: string;
}

/** A stored segment a chain needs, with the first backup that needs it (its systemid and major are expected). */
interface Needed extends Run {
  file: ArchivedFile;
  backup: ChainBackup;
}

/** Reads every history file; one that cannot be read or parsed is a problem, and its timeline is left out. */
async function readHistories(store: ObjectStore, inv: ArchiveInventory, problems: Problem[], age: AgeKeys | undefined): Promise<Map<number, TimelineHistoryEntry[]>> {
  const out = new Map<number, TimelineHistoryEntry[]>();
  for (const [tl, file] of [...inv.histories].sort((a, b) => a[0] - b[0])) {
    // Missing keys are the command's configuration, not a damaged history file.
    assertDecodable(splitCodecSuffix(file.key), age, file.key);
    try {
      out.set(tl, await readHistory(store, file, tl, age));
    } catch (err) {
      problems.push({ key: file.key, what: `it cannot be read as a timeline history: ${(err as Error).message}` });
    }
  }
  return out;
}

const sameAncestry = (a: TimelineHistoryEntry[], b: TimelineHistoryEntry[]) =>
  a.length === b.length && a.every((e, i) => e.timeline === b[i].timeline && e.switchpoint === b[i].switchpoint);

const describe = (entries: TimelineHistoryEntry[]) => entries.map((e) => `${e.timeline} until ${formatLsn(e.switchpoint)}`).join(', ') || 'none';

/** History files against each other and against the segments: a child repeats its parent's ancestry, timelines only after they began. */
function historyProblems(inv: ArchiveInventory, histories: Map<number, TimelineHistoryEntry[]>, segSize: number, problems: Problem[]): void {
  for (const [tl, entries] of histories) {
    const key = inv.histories.get(tl)!.key;
    const parent = entries.at(-1);
    if (!parent) {
      problems.push({ key, what: `it lists no parent timeline, but timeline ${tl} must descend from one` });
      continue;
    }
    if (parent.timeline >= tl) {
      problems.push({ key, what: `it names timeline ${parent.timeline} as an ancestor of timeline ${tl}; ancestors have lower numbers` });
      continue;
    }
    if (parent.timeline === 1) continue;
    const parentHistory = histories.get(parent.timeline);
    if (!parentHistory) {
      if (!inv.histories.has(parent.timeline)) problems.push({ key, what: `its parent timeline ${parent.timeline} has no history file (${historyFileName(parent.timeline)})` });
    } else if (!sameAncestry(parentHistory, entries.slice(0, -1))) {
      problems.push({
        key,
        what: `it gives timeline ${parent.timeline} the ancestry [${describe(entries.slice(0, -1))}], but ${historyFileName(parent.timeline)} says [${describe(parentHistory)}]`,
      });
    }
  }
  for (const [tl, segments] of inv.segments) {
    if (tl === 1) continue;
    const entries = histories.get(tl);
    const first = Math.min(...segments.keys());
    if (!entries) {
      if (!inv.histories.has(tl)) problems.push({ key: segments.get(first)!.key, what: `timeline ${tl} has segments but no history file (${historyFileName(tl)})` });
      continue;
    }
    const began = entries.at(-1)?.switchpoint ?? 0n;
    const earliest = Number(began / BigInt(segSize));
    if (first < earliest) {
      problems.push({ key: segments.get(first)!.key, what: `it is on timeline ${tl} before that timeline began at ${formatLsn(began)} (${historyFileName(tl)})` });
    }
  }
}

/** The path to `timeline` (PostgreSQL's "latest" when it holds the backup), or undefined when its history is unknown. */
function pathTo(timeline: number, histories: Map<number, TimelineHistoryEntry[]>): TimelineStep[] | undefined {
  if (timeline === 1) return [{ timeline: 1, begin: 0n }];
  const entries = histories.get(timeline);
  return entries && pathFromHistory(entries, timeline);
}

function holdsBackup(path: TimelineStep[], b: ChainBackup): boolean {
  const i = path.findIndex((s) => s.timeline === b.timeline);
  return i >= 0 && (i + 1 === path.length || path[i + 1].begin >= b.endLsn);
}

export async function verifyWalChain(store: ObjectStore, backups: ChainBackup[], opts: ChainOptions): Promise<ChainResult> {
  const segSize = backups[0].segmentSize;
  const serverName = backups[0].serverName;
  const problems: Problem[] = [];
  const notChecked: string[] = [];
  const result: ChainResult = {
    ok: false,
    segmentSize: segSize,
    segmentsInChain: 0,
    segmentsRead: 0,
    firstSegment: null,
    lastSegment: null,
    timelines: [],
    historyFiles: [],
    gaps: [],
    windows: [],
    problems,
    notChecked,
    objectsRead: 0,
    bytesRead: 0,
    lastSegments: {},
  };
  for (const b of backups) {
    if (b.segmentSize !== segSize) problems.push({ key: backupInfoKey(serverName, b.backupId), what: `backup.info: xlog_segment_size is ${b.segmentSize}, other backups have ${segSize}` });
  }
  let inv: ArchiveInventory;
  try {
    inv = await listArchive(store, serverName, segSize);
  } catch (err) {
    problems.push({ key: walKey(serverName, ''), what: (err as Error).message });
    return result;
  }
  result.historyFiles = [...inv.histories.keys()].sort((a, b) => a - b).map(historyFileName);
  const histories = await readHistories(store, inv, problems, opts.age);
  historyProblems(inv, histories, segSize, problems);

  // Every segment any chain needs, once; and for each backup, its segments in order (undefined = missing).
  const needed = new Map<string, Needed>();
  const chains: { backup: ChainBackup; runs: Run[] }[] = [];
  for (const b of [...backups].sort((x, y) => compareWalNames(x.backupId, y.backupId))) {
    const infoKey = backupInfoKey(serverName, b.backupId);
    const own = pathTo(b.timeline, histories);
    if (!own) {
      problems.push({ key: infoKey, what: `backup.info: the backup is on timeline ${b.timeline}, which has no readable history file (${historyFileName(b.timeline)})` });
      continue;
    }
    const began = own[own.length - 1].begin;
    if (b.beginLsn < began) {
      problems.push({ key: infoKey, what: `backup.info: the backup began at ${formatLsn(b.beginLsn)} on timeline ${b.timeline}, but ${historyFileName(b.timeline)} says that timeline began at ${formatLsn(began)}` });
    }
    const latest = latestTimeline(inv, b.timeline);
    const toLatest = pathTo(latest, histories);
    let path = own;
    if (toLatest && holdsBackup(toLatest, b)) path = toLatest;
    else if (latest !== b.timeline) notChecked.push(`backup ${b.backupId} is not in the history of the latest timeline ${latest}: its chain follows timeline ${b.timeline} only`);
    const timelineOf = (n: number) => timelineForSegment(path, n, segSize);
    const first = Number(b.beginLsn / BigInt(segSize));
    let last = first;
    for (const step of path) for (const n of inv.segments.get(step.timeline)?.keys() ?? []) if (n > last && timelineOf(n) === step.timeline) last = n;
    const runs: Run[] = [];
    for (let n = first; n <= last; n++) {
      const timeline = timelineOf(n);
      const file = inv.segments.get(timeline)?.get(n);
      runs.push({ segno: n, timeline, key: file?.key });
      if (file && !needed.has(file.key)) needed.set(file.key, { segno: n, timeline, key: file.key, file, backup: b });
    }
    chains.push({ backup: b, runs });
    if (result.timelines.length < path.length) result.timelines = path.map((s) => ({ timeline: s.timeline, begin: formatLsn(s.begin) }));
  }

  // Gaps, once each, named on the timeline the chain reads them from.
  const gapSeen = new Set<string>();
  for (const { runs } of chains) {
    for (let i = 0; i < runs.length; i++) {
      if (runs[i].key) continue;
      let j = i;
      while (j + 1 < runs.length && !runs[j + 1].key) j++;
      const gap: WalGapResult = {
        timeline: runs[i].timeline,
        from: segmentNameAt(runs[i].timeline, runs[i].segno, segSize),
        to: segmentNameAt(runs[j].timeline, runs[j].segno, segSize),
        missing: j - i + 1,
        fromLsn: formatLsn(BigInt(runs[i].segno) * BigInt(segSize)),
        toLsn: formatLsn(BigInt(runs[j].segno + 1) * BigInt(segSize)),
      };
      if (!gapSeen.has(gap.from)) {
        gapSeen.add(gap.from);
        result.gaps.push(gap);
        problems.push({ key: walKey(serverName, gap.from), what: `missing: ${gap.missing} segment(s) ${gap.from} .. ${gap.to} (WAL ${gap.fromLsn} .. ${gap.toLsn})` });
      }
      i = j;
    }
  }

  // Read back what is needed, except what a good earlier run already read.
  const all = [...needed.values()].sort((a, b) => a.segno - b.segno || a.timeline - b.timeline);
  const toRead = all.filter((s) => {
    const after = opts.readAfter?.[String(s.timeline)];
    return after === undefined || compareWalNames(segmentNameAt(s.timeline, s.segno, segSize), after) > 0;
  });
  for (const s of toRead) assertDecodable(splitCodecSuffix(s.file.key), opts.age, s.file.key);
  const bad = new Set<string>();
  await mapLimit(toRead, opts.jobs, async (s) => {
    const name = segmentNameAt(s.timeline, s.segno, segSize);
    const check = new SegmentPageCheck({ name, segmentSize: segSize, systemId: s.backup.systemId, major: s.backup.major, history: histories.get(s.timeline) ?? [] });
    let failure: string | undefined;
    try {
      await pipeline([await store.get(s.file.key), opts.counter(), ...decodeStreams(splitCodecSuffix(s.file.key), opts.age, s.file.key), check]);
    } catch (err) {
      failure = (err as Error).message;
    }
    result.objectsRead++;
    result.bytesRead += s.file.size;
    const found = failure ? [failure] : check.problems();
    if (found.length) {
      bad.add(s.file.key);
      for (const what of found) problems.push({ key: s.file.key, what });
    }
  });
  result.segmentsRead = toRead.length;
  result.segmentsInChain = all.length;
  if (all.length) {
    result.firstSegment = segmentNameAt(all[0].timeline, all[0].segno, segSize);
    const newest = all[all.length - 1];
    result.lastSegment = segmentNameAt(newest.timeline, newest.segno, segSize);
  }
  for (const s of all) {
    const name = segmentNameAt(s.timeline, s.segno, segSize);
    const tl = String(s.timeline);
    if (!result.lastSegments[tl] || compareWalNames(name, result.lastSegments[tl]) > 0) result.lastSegments[tl] = name;
  }
  result.windows = chains.map(({ backup, runs }) => windowOf(backup, runs, bad, segSize));
  result.ok = problems.length === 0;
  return result;
}

function windowOf(b: ChainBackup, runs: Run[], bad: Set<string>, segSize: number): RecoverableWindow {
  const breakAt = runs.findIndex((r) => !r.key || bad.has(r.key));
  const endSegno = Number((b.endLsn === 0n ? 0n : b.endLsn - 1n) / BigInt(segSize));
  const lastGood = breakAt < 0 ? runs.at(-1) : breakAt === 0 ? undefined : runs[breakAt - 1];
  const endsAt: RecoverableWindow['endsAt'] = breakAt < 0 ? 'end-of-archive' : !runs[breakAt].key ? 'gap' : 'bad-segment';
  if (lastGood === undefined || lastGood.segno < endSegno) {
    return { backupId: b.backupId, fromLsn: null, fromTime: null, toLsn: null, lastSegment: null, endsAt: breakAt === 0 ? 'begin-missing' : endsAt };
  }
  return {
    backupId: b.backupId,
    fromLsn: formatLsn(b.endLsn),
    fromTime: b.endTime,
    toLsn: formatLsn(BigInt(lastGood.segno + 1) * BigInt(segSize)),
    lastSegment: segmentNameAt(lastGood.timeline, lastGood.segno, segSize),
    endsAt,
  };
}
