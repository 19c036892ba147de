/** PostgreSQL log sequence numbers ("X/X", a 64-bit byte position in the WAL) as bigint. */
import { UserError } from '../util/errors.js';

export type Lsn = bigint;

export const MAX_LSN: Lsn = (1n << 64n) - 1n;
export const INVALID_LSN: Lsn = 0n;

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses "16/B374D848". `what` names the value in the error ("--target-lsn", "backup_label line 1"). */
export function parseLsn(text: string, what = 'LSN'): Lsn {
  const m = LSN_RE.exec(text.trim());
  if (!m) {
    throw new UserError(`${what}: "${text}" is not a valid LSN (expected two hexadecimal numbers of at most 8 digits separated by "/", e.g. 0/16B3748)`);
  }
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function isLsn(text: string): boolean {
  return LSN_RE.test(text.trim());
}

/** Formats like PostgreSQL's %X/%X: upper-case hex, no padding. */
export function formatLsn(lsn: Lsn): string {
  checkRange(lsn, 'LSN');
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Bytes from `b` to `a` (negative when a is before b), like pg_wal_lsn_diff(a, b). */
export function lsnDiff(a: Lsn, b: Lsn): bigint {
  return a - b;
}

/** lsn + bytes; the result must stay within 0 .. 2^64-1. */
export function lsnAdd(lsn: Lsn, bytes: bigint | number): Lsn {
  const r = lsn + BigInt(bytes);
  checkRange(r, `LSN ${formatLsn(lsn)} + ${bytes}`);
  return r;
}

export function compareLsn(a: Lsn, b: Lsn): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkRange(lsn: Lsn, what: string): void {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError(`${what} is outside the 64-bit WAL address space`);
}
