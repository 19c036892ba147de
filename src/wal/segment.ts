/**
 * What the WAL commands need to know about WAL file names and segment headers: the kind of a
 * name, its timeline, the segment that follows (for restore prefetch) and the system identifier
 * stored in a segment's first page (for the archive ownership check).
 */
import { WAL_NAME_RE } from '../catalog/layout.js';

export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

export type WalFileKind = 'segment' | 'history' | 'backup' | 'partial';

export interface ParsedWalName {
  name: string;
  kind: WalFileKind;
  timeline: number;
  /** Log and segment numbers (absent for .history). */
  log?: number;
  seg?: number;
}

/** Parses a WAL file name (barman's xlog regex); undefined when it is not one. */
export function parseWalName(name: string): ParsedWalName | undefined {
  const m = WAL_NAME_RE.exec(name);
  if (!m) return undefined;
  const timeline = parseInt(m[1], 16);
  if (m[2] === undefined) return { name, kind: 'history', timeline };
  const kind: WalFileKind = name.endsWith('.backup') ? 'backup' : name.endsWith('.partial') ? 'partial' : 'segment';
  return { name, kind, timeline, log: parseInt(m[2], 16), seg: parseInt(m[3], 16) };
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/** Segments per "log" (the middle 8 hex digits) for a segment size: 256 for 16 MiB. */
export function segmentsPerLog(segmentSize: number): number {
  return Math.floor(0x100000000 / segmentSize);
}

/** Position of a segment on its timeline, for ordering and gap detection. */
export function segmentNumber(log: number, seg: number, segmentSize: number): number {
  return log * segmentsPerLog(segmentSize) + seg;
}

export function segmentNameAt(timeline: number, number: number, segmentSize: number): string {
  const per = segmentsPerLog(segmentSize);
  return hex8(timeline) + hex8(Math.floor(number / per)) + hex8(number % per);
}

/** The `count` segment names following a plain segment name on the same timeline. */
export function followingSegments(name: string, count: number, segmentSize: number): string[] {
  const p = parseWalName(name);
  if (!p || p.kind !== 'segment') return [];
  const start = segmentNumber(p.log!, p.seg!, segmentSize);
  return Array.from({ length: count }, (_, i) => segmentNameAt(p.timeline, start + i + 1, segmentSize));
}

/** A valid WAL segment size: a power of two from 1 MiB to 1 GiB. */
export function isSegmentSize(n: number): boolean {
  return n >= 1 << 20 && n <= 1 << 30 && (n & (n - 1)) === 0;
}

/** XLogLongPageHeaderData: xlp_magic(2) xlp_info(2) xlp_tli(4) xlp_pageaddr(8) xlp_rem_len(4) pad(4) xlp_sysid(8) xlp_seg_size(4) xlp_xlog_blcksz(4). */
const XLP_LONG_HEADER = 0x0002;
const LONG_HEADER_SIZE = 40;

export interface SegmentHeader {
  timeline: number;
  systemIdentifier: string;
  segmentSize: number;
}

/** Reads the long page header at the start of a WAL segment; undefined when the bytes are not one. */
export function readSegmentHeader(head: Buffer): SegmentHeader | undefined {
  if (head.length < LONG_HEADER_SIZE) return undefined;
  const info = head.readUInt16LE(2);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  const segmentSize = head.readUInt32LE(32);
  if (!isSegmentSize(segmentSize)) return undefined;
  return { timeline: head.readUInt32LE(4), systemIdentifier: head.readBigUInt64LE(24).toString(), segmentSize };
}
