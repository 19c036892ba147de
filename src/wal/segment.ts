/**
 * The long page header at the start of a WAL segment: the system identifier it holds (for the
 * archive ownership check), its timeline and segment size. WAL file names are src/pg/wal-names.ts.
 */
import { open } from 'node:fs/promises';
import { isSegmentSize } from '../pg/wal-names.js';

/** XLogLongPageHeaderData: xlp_magic(2) xlp_info(2) xlp_tli(4) xlp_pageaddr(8) xlp_rem_len(4) pad(4) xlp_sysid(8) xlp_seg_size(4) xlp_xlog_blcksz(4). */
const XLP_LONG_HEADER = 0x0002;
const LONG_HEADER_SIZE = 40;

export interface SegmentHeader {
  timeline: number;
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
  return { timeline: head.readUInt32LE(4), systemIdentifier: head.readBigUInt64LE(24).toString(), segmentSize };
}
