/**
 * The long page header at the start of a WAL segment: the system identifier it holds (for the
 * archive ownership check), its timeline and segment size. WAL file names are src/pg/wal-names.ts.
 */
import { open } from 'node:fs/promises';
import { classifyWalName, isSegmentSize, parseSegmentName, segmentsPerXLogId, segmentStartLsn, walSegmentName } from '../pg/wal-names.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';

/** XLogLongPageHeaderData: xlp_magic(2) xlp_info(2) xlp_tli(4) xlp_pageaddr(8) xlp_rem_len(4) pad(4) xlp_sysid(8) xlp_seg_size(4) xlp_xlog_blcksz(4). */
const XLP_LONG_HEADER = 0x0002;
export const LONG_HEADER_SIZE = 40;

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
  const kind = classifyWalName(name);
  const wal = kind === 'segment' || kind === 'partial' ? parseSegmentName(name) : undefined;
  if (!wal || wal.seg >= segmentsPerXLogId(header.segmentSize)) return `its name does not fit its page header's segment size of ${header.segmentSize} bytes`;
  const start = segmentStartLsn(wal, header.segmentSize);
  if (header.pageAddress !== start) {
    const holds = header.pageAddress % BigInt(header.segmentSize) === 0n ? `, so it is ${walSegmentName(header.timeline, header.pageAddress, header.segmentSize)}` : '';
    return `its first page is for LSN ${formatLsn(header.pageAddress)}${holds}, not ${formatLsn(start)} where ${name} starts`;
  }
  if (header.timeline > wal.timeline) return `its first page is on timeline ${header.timeline}, later than timeline ${wal.timeline} of its name`;
  return undefined;
}
