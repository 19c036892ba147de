/**
 * The WAL archive as replay sees it: every segment by timeline and position, every history file,
 * and the timeline path a history file describes. Recovery plans its replay window from it and
 * `pgark verify --wal` walks the chain over it.
 */
import { decodeBuffer, splitCodecSuffix, type AgeKeys } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import { parseHistoryFile, type TimelineHistoryEntry } from '../pg/history.js';
import type { Lsn } from '../pg/lsn.js';
import { historyFileName, parseWalName, segmentNumber } from '../pg/wal-names.js';
import { archivedWalFiles } from './list.js';

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

/** The entries of a stored history file (decoded by its key's suffixes, with `age` when encrypted); throws when it does not parse. */
export async function readHistory(store: ObjectStore, file: ArchivedFile, timeline: number, age?: AgeKeys): Promise<TimelineHistoryEntry[]> {
  const raw = await store.getBuffer(file.key);
  const text = (await decodeBuffer(splitCodecSuffix(file.key), raw, age, file.key)).toString('utf8');
  return parseHistoryFile(text, historyFileName(timeline));
}

/** The path to `timeline` from its history entries: each ancestor from where it began, then `timeline` itself. */
export function pathFromHistory(entries: TimelineHistoryEntry[], timeline: number): TimelineStep[] {
  const steps = entries.map((e, i) => ({ timeline: e.timeline, begin: i === 0 ? 0n : entries[i - 1].switchpoint }));
  steps.push({ timeline, begin: entries.length ? entries[entries.length - 1].switchpoint : 0n });
  return steps;
}

/** The path to `timeline` from its history file's text. */
export function historyPath(text: string, timeline: number): TimelineStep[] {
  return pathFromHistory(parseHistoryFile(text, historyFileName(timeline)), timeline);
}

/** The timeline path PostgreSQL follows to `targetTimeline`, read from its history file. */
export async function timelinePath(store: ObjectStore, inv: ArchiveInventory, targetTimeline: number, age?: AgeKeys): Promise<TimelineStep[]> {
  if (targetTimeline === 1) return [{ timeline: 1, begin: 0n }];
  const file = inv.histories.get(targetTimeline);
  if (!file) {
    throw new UserError(
      `timeline ${targetTimeline} has no history file (${historyFileName(targetTimeline)}) in the archive`,
      `archived timelines: ${[...inv.segments.keys()].sort((a, b) => a - b).join(', ') || 'none'}`,
    );
  }
  return pathFromHistory(await readHistory(store, file, targetTimeline, age), targetTimeline);
}

/** "latest": the highest timeline with a history file (PostgreSQL's default since 12), or the backup's. */
export function latestTimeline(inv: ArchiveInventory, backupTimeline: number): number {
  return Math.max(backupTimeline, ...inv.histories.keys());
}

/** The timeline PostgreSQL reads segment `segno` from: the newest of the path that had begun by its start (a switch point's segment comes from the child). */
export function timelineForSegment(path: TimelineStep[], segno: number, segSize: number): number {
  let tl = path[0].timeline;
  for (const s of path) if (Number(s.begin / BigInt(segSize)) <= segno) tl = s.timeline;
  return tl;
}
