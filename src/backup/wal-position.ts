/** LSN arithmetic for backup.info's begin/end WAL fields (barman's location_to_xlogfile_name_offset). */

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

function hex8(n: bigint | number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** The WAL segment holding `lsn` on `timeline`, and the byte offset inside it. */
export function walFileAt(timeline: number, lsn: string, segmentSize: number): { wal: string; offset: number } {
  const pos = parseLsn(lsn);
  const size = BigInt(segmentSize);
  const segNo = pos / size;
  const perLog = 0x100000000n / size;
  return { wal: `${hex8(timeline)}${hex8(segNo / perLog)}${hex8(segNo % perLog)}`, offset: Number(pos % size) };
}
