/**
 * What the WAL commands need to know about WAL file names (a thin layer over src/pg/wal-names.ts
 * in the shapes the WAL modules use) and the system identifier stored in a segment's first page
 * (for the archive ownership check).
 */
import { open } from 'node:fs/promises';
import {
  classifyWalName,
  DEFAULT_WAL_SEGMENT_SIZE,
  formatSegmentName,
  nextSegment,
  parseWalName as parseArchiveName,
  segmentFromNumber,
  segmentNumber as pgSegmentNumber,
  segmentStartLsn,
  segmentsPerXLogId,
  validateSegmentSize,
  walSegmentName,
  type WalFileKind,
} from '../pg/wal-names.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';

export type { WalFileKind };
export const DEFAULT_SEGMENT_SIZE = DEFAULT_WAL_SEGMENT_SIZE;

export interface ParsedWalName {
  name: string;
  kind: WalFileKind;
  timeline: number;
  /** Log and segment numbers (absent for .history). */
  log?: number;
  seg?: number;
}

/** Parses a WAL file name; undefined when it is not one, so each command chooses its own error. */
export function parseWalName(name: string): ParsedWalName | undefined {
  if (!classifyWalName(name)) return undefined;
  const p = parseArchiveName(name);
  return { name, kind: p.kind, timeline: p.timeline, log: p.segment?.log, seg: p.segment?.seg };
}

/** Segments per "log" (the middle 8 hex digits) for a segment size: 256 for 16 MiB. */
export const segmentsPerLog = segmentsPerXLogId;

/** Position of a segment on its timeline, for ordering and gap detection. */
export function segmentNumber(log: number, seg: number, segmentSize: number): number {
  return pgSegmentNumber({ timeline: 1, log, seg }, segmentSize);
}

export function segmentNameAt(timeline: number, number: number, segmentSize: number): string {
  return formatSegmentName(segmentFromNumber(timeline, number, segmentSize));
}

/** The `count` segment names following a plain segment name on the same timeline. */
export function followingSegments(name: string, count: number, segmentSize: number): string[] {
  if (classifyWalName(name) !== 'segment') return [];
  const out: string[] = [];
  for (let prev = name; out.length < count; ) out.push((prev = nextSegment(prev, segmentSize)));
  return out;
}

/** A valid WAL segment size: a power of two from 1 MiB to 1 GiB. */
export function isSegmentSize(n: number): boolean {
  try {
    validateSegmentSize(n);
    return true;
  } catch {
    return false;
  }
}

/** XLogLongPageHeaderData: xlp_magic(2) xlp_info(2) xlp_tli(4) xlp_pageaddr(8) xlp_rem_len(4) pad(4) xlp_sysid(8) xlp_seg_size(4) xlp_xlog_blcksz(4). */
const XLP_LONG_HEADER = 0x0002;
const LONG_HEADER_SIZE = 40;

export interface SegmentHeader {
  timeline: number;
  /** xlp_pageaddr: the LSN the first page holds, so the start of the segment. */
  pageAddress: Lsn;
  systemIdentifier: string;
  segmentSize: number;
}

/** The long page header of the WAL segment file at path (only its first bytes are read). */
export async function readSegmentHeaderOf(path: string): Promise<SegmentHeader | undefined> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(LONG_HEADER_SIZE), 0, LONG_HEADER_SIZE, 0);
    return readSegmentHeader(buffer.subarray(0, bytesRead));
  } finally {
    await file.close();
  }
}

/** Reads the long page header at the start of a WAL segment; undefined when the bytes are not one. */
export function readSegmentHeader(head: Buffer): SegmentHeader | undefined {
  if (head.length < LONG_HEADER_SIZE) return undefined;
  const info = head.readUInt16LE(2);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  const segmentSize = head.readUInt32LE(32);
  if (!isSegmentSize(segmentSize)) return undefined;
  return { timeline: head.readUInt32LE(4), pageAddress: head.readBigUInt64LE(8), systemIdentifier: head.readBigUInt64LE(24).toString(), segmentSize };
}

/**
 * Why a segment file of `size` bytes with this first-page header cannot be segment `name`, or
 * undefined when it can. PostgreSQL takes a short file for the end of WAL and stops replay there,
 * so the size must be exactly the header's segment size; a file stored under another segment's
 * name is caught by its page address. The header's timeline may be an ancestor of the name's: the
 * first segment of a new timeline starts with a copy of the parent's WAL.
 */
export function segmentContentProblem(name: string, size: number, header: SegmentHeader | undefined): string | undefined {
  if (!header) return `its first page has no WAL long page header (${size} bytes)`;
  if (size !== header.segmentSize) return `it is ${size} bytes long, but its page header gives a segment size of ${header.segmentSize} bytes`;
  const wal = parseWalName(name);
  if (wal?.log === undefined || wal.seg === undefined || wal.seg >= segmentsPerLog(header.segmentSize)) {
    return `its name does not fit its page header's segment size of ${header.segmentSize} bytes`;
  }
  const start = segmentStartLsn({ timeline: wal.timeline, log: wal.log, seg: wal.seg }, header.segmentSize);
  if (header.pageAddress !== start) {
    const holds = header.pageAddress % BigInt(header.segmentSize) === 0n ? `, so it is ${walSegmentName(header.timeline, header.pageAddress, header.segmentSize)}` : '';
    return `its first page is for LSN ${formatLsn(header.pageAddress)}${holds}, not ${formatLsn(start)} where ${name} starts`;
  }
  if (header.timeline > wal.timeline) return `its first page is on timeline ${header.timeline}, later than timeline ${wal.timeline} of its name`;
  return undefined;
}
