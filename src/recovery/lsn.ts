/**
 * LSN and WAL segment arithmetic used by recovery planning.
 * Segment numbers follow PostgreSQL's XLogFileName: TLI(8) + (segno / segsPerXLogId)(8) + (segno % segsPerXLogId)(8).
 */

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new RangeError(`not an LSN: "${text}" (expected e.g. 0/3000060)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface SegmentPosition {
  timeline: number;
  segno: bigint;
}

function segmentsPerId(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

/** Parses a 24-hex-digit segment name; undefined for history/backup/partial names. */
export function parseSegmentName(name: string, segmentSize: number): SegmentPosition | undefined {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/i.exec(name);
  if (!m) return undefined;
  return { timeline: parseInt(m[1], 16), segno: BigInt(`0x${m[2]}`) * segmentsPerId(segmentSize) + BigInt(`0x${m[3]}`) };
}

export function segmentName(pos: SegmentPosition, segmentSize: number): string {
  const per = segmentsPerId(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(pos.timeline)}${hex(pos.segno / per)}${hex(pos.segno % per)}`;
}

export function segnoOfLsn(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

export function lsnOfSegno(segno: bigint, segmentSize: number): bigint {
  return segno * BigInt(segmentSize);
}
