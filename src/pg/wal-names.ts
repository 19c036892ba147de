/**
 * WAL file names as PostgreSQL builds them (xlog_internal.h): TTTTTTTTXXXXXXXXYYYYYYYY where
 * T = timeline, X = "log" (high part of the segment number), Y = segment within that log.
 * A log holds 0x100000000 / segment size segments, so with 16 MiB segments Y runs 00..FF and with
 * 1 GiB segments 00..03. Names of .history, .backup and .partial files are recognised as well.
 * This is the one place that reads WAL names; bin/pgark (sh) repeats only its plain-segment test,
 * and test/wal/launcher.test.ts checks that both agree.
 */
import { UserError } from '../util/errors.js';
import { formatLsn, type Lsn } from './lsn.js';

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
const MIN_SEGMENT_SIZE = 1024 * 1024;
const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024;
const LOG_SPAN = 0x100000000;

export type WalFileKind = 'segment' | 'partial' | 'backup' | 'history';

/** A segment's coordinates. `log` and `seg` are the two halves of the segment number. */
export interface WalSegment {
  timeline: number;
  log: number;
  seg: number;
}

export interface ParsedWalName {
  kind: WalFileKind;
  timeline: number;
  /** Absent for .history files. */
  segment?: WalSegment;
  /** For .backup files: the backup's start offset within the segment. */
  backupOffset?: number;
  /** The 24-character segment name (or the 8-character timeline for .history), upper case. */
  base: string;
}

const NAME_RE = /^([0-9A-Fa-f]{8})(?:([0-9A-Fa-f]{8})([0-9A-Fa-f]{8})(?:\.([0-9A-Fa-f]{8})\.backup|(\.partial))?|\.history)$/;

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** A valid WAL segment size: a power of two from 1 MiB to 1 GiB. */
export function isSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= MIN_SEGMENT_SIZE && size <= MAX_SEGMENT_SIZE && (size & (size - 1)) === 0;
}

/** Throws unless the size is one PostgreSQL accepts: a power of two from 1 MiB to 1 GiB. */
export function validateSegmentSize(size: number): number {
  if (!isSegmentSize(size)) {
    throw new UserError(`WAL segment size ${size} is invalid (expected a power of two between 1 MiB and 1 GiB)`);
  }
  return size;
}

export function segmentsPerXLogId(segSize: number): number {
  return LOG_SPAN / validateSegmentSize(segSize);
}

function checkTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) throw new UserError(`timeline ${timeline} is invalid (expected 1 to 4294967295)`);
}

/** The segment number (0-based count of segments since LSN 0) of a segment. */
export function segmentNumber(s: WalSegment, segSize: number): number {
  return s.log * segmentsPerXLogId(segSize) + s.seg;
}

export function segmentFromNumber(timeline: number, segno: number, segSize: number): WalSegment {
  checkTimeline(timeline);
  const per = segmentsPerXLogId(segSize);
  if (!Number.isSafeInteger(segno) || segno < 0 || segno >= per * LOG_SPAN) throw new RangeError(`segment number ${segno} is out of range`);
  return { timeline, log: Math.floor(segno / per), seg: segno % per };
}

export function formatSegmentName(s: WalSegment): string {
  return `${hex8(s.timeline)}${hex8(s.log)}${hex8(s.seg)}`;
}

/** Name of segment number `segno` on `timeline`. */
export function segmentNameAt(timeline: number, segno: number, segSize: number): string {
  return formatSegmentName(segmentFromNumber(timeline, segno, segSize));
}

/** The segment holding `lsn` on `timeline` (XLByteToSeg + XLogFileName). */
export function walSegmentName(timeline: number, lsn: Lsn, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  return segmentNameAt(timeline, Number(lsn / BigInt(validateSegmentSize(segSize))), segSize);
}

/** Byte offset of `lsn` within its segment (barman's begin_offset/end_offset). */
export function walSegmentOffset(lsn: Lsn, segSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  return Number(lsn % BigInt(validateSegmentSize(segSize)));
}

/** First LSN of a segment. */
export function segmentStartLsn(s: WalSegment, segSize = DEFAULT_WAL_SEGMENT_SIZE): Lsn {
  return BigInt(segmentNumber(s, segSize)) * BigInt(segSize);
}

/** Name of the backup history file PostgreSQL writes for a backup starting at `lsn`. */
export function backupHistoryFileName(timeline: number, lsn: Lsn, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  return `${walSegmentName(timeline, lsn, segSize)}.${hex8(walSegmentOffset(lsn, segSize))}.backup`;
}

export function historyFileName(timeline: number): string {
  checkTimeline(timeline);
  return `${hex8(timeline)}.history`;
}

/** A name barman's xlog regex accepts, read without judging it (walNameParts). */
export interface WalNameParts {
  kind: WalFileKind;
  timeline: number;
  /** The 8 timeline digits, as written (either case). */
  timelineHex: string;
  /** The 24-character segment name, as written; absent for .history. A .backup or .partial file's is the segment it belongs to. */
  segmentName?: string;
}

/**
 * The parts of a name barman's xlog regex accepts (either case, any timeline, 0 included: only
 * parseWalName refuses it), or undefined. Listings use it, so an odd key is skipped, not fatal;
 * the text is kept as written because barman compares WAL names as plain strings.
 */
export function walNameParts(name: string): WalNameParts | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const head = { timeline: parseInt(m[1]!, 16), timelineHex: m[1]! };
  if (m[2] === undefined) return { kind: 'history', ...head };
  const segmentName = `${m[1]}${m[2]}${m[3]}`;
  if (m[4] !== undefined) return { kind: 'backup', ...head, segmentName };
  return { kind: m[5] ? 'partial' : 'segment', ...head, segmentName };
}

/** Kind and timeline of a name walNameParts accepts, or undefined. */
export function recogniseWalName(name: string): { kind: WalFileKind; timeline: number } | undefined {
  const p = walNameParts(name);
  return p && { kind: p.kind, timeline: p.timeline };
}

/** Kind of a WAL-archive file name, or undefined when it is not one. */
export function classifyWalName(name: string): WalFileKind | undefined {
  return recogniseWalName(name)?.kind;
}

/**
 * Parses any WAL-archive file name. With `segSize`, also checks that the segment part is possible
 * for that size (e.g. ...00000100 does not exist with 16 MiB segments).
 */
export function parseWalName(name: string, segSize?: number): ParsedWalName {
  const m = NAME_RE.exec(name);
  if (!m) {
    throw new UserError(
      `"${name}" is not a WAL file name`,
      'expected 24 hex digits (timeline, log, segment), optionally followed by .partial or .XXXXXXXX.backup, or 8 hex digits + .history',
    );
  }
  const timeline = parseInt(m[1]!, 16);
  if (timeline === 0) throw new UserError(`"${name}" has timeline 0, which PostgreSQL never uses`);
  if (m[2] === undefined) return { kind: 'history', timeline, base: m[1]!.toUpperCase() };
  const segment: WalSegment = { timeline, log: parseInt(m[2], 16), seg: parseInt(m[3]!, 16) };
  if (segSize !== undefined && segment.seg >= segmentsPerXLogId(segSize)) {
    throw new UserError(`"${name}" cannot exist with ${segSize}-byte WAL segments (segment part must be below ${hex8(segmentsPerXLogId(segSize))})`);
  }
  const base = formatSegmentName(segment);
  if (m[4] !== undefined) return { kind: 'backup', timeline, segment, backupOffset: parseInt(m[4], 16), base };
  return { kind: m[5] ? 'partial' : 'segment', timeline, segment, base };
}

/** {timeline, log, seg} of a segment-like name (segment, .partial or .backup). */
export function parseSegmentName(name: string, segSize?: number): WalSegment {
  const p = parseWalName(name, segSize);
  if (!p.segment) throw new UserError(`"${name}" is a timeline history file, not a WAL segment`);
  return p.segment;
}

export function timelineOfWalName(name: string): number {
  return parseWalName(name).timeline;
}

/** The segment after `name` on the same timeline, rolling over into the next log. */
export function nextSegment(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const s = parseSegmentName(name, segSize);
  return segmentNameAt(s.timeline, segmentNumber(s, segSize) + 1, segSize);
}

/** The `count` segment names following a plain segment name on the same timeline (none after other kinds). */
export function followingSegments(name: string, count: number, segSize = DEFAULT_WAL_SEGMENT_SIZE): string[] {
  if (classifyWalName(name) !== 'segment') return [];
  const out: string[] = [];
  for (let prev = name; out.length < count; ) out.push((prev = nextSegment(prev, segSize)));
  return out;
}

/** The segment before `name` on the same timeline; there is none before segment 0. */
export function previousSegment(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const s = parseSegmentName(name, segSize);
  const n = segmentNumber(s, segSize);
  if (n === 0) throw new RangeError(`${name} is the first possible segment; there is no previous one`);
  return segmentNameAt(s.timeline, n - 1, segSize);
}

/** Segment names from `first` to `last` inclusive, both on the same timeline. */
export function* segmentRange(first: string, last: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): Generator<string> {
  const a = parseSegmentName(first, segSize);
  const b = parseSegmentName(last, segSize);
  if (a.timeline !== b.timeline) throw new UserError(`WAL range ${first}..${last} spans timelines ${a.timeline} and ${b.timeline}`);
  const end = segmentNumber(b, segSize);
  for (let n = segmentNumber(a, segSize); n <= end; n++) yield segmentNameAt(a.timeline, n, segSize);
}

/** Segments that hold WAL from `start` to `end` (inclusive) on one timeline. */
export function segmentsForLsnRange(timeline: number, start: Lsn, end: Lsn, segSize = DEFAULT_WAL_SEGMENT_SIZE): Generator<string> {
  if (end < start) throw new RangeError(`LSN range ${formatLsn(start)}..${formatLsn(end)} is reversed`);
  return segmentRange(walSegmentName(timeline, start, segSize), walSegmentName(timeline, end, segSize), segSize);
}

/**
 * Orders WAL names as barman and PostgreSQL do: by timeline, then position (the hex digits compare
 * correctly as upper-case strings); for one segment, the segment sorts before its .backup/.partial.
 */
export function compareWalNames(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}
