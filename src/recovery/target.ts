/**
 * spec.bootstrap.recovery.recoveryTarget: the parsed form pgark plans with, and the PostgreSQL
 * settings CNPG writes for it (RecoveryTarget.BuildPostgresOptions). Pure functions; the config
 * layer has already applied CNPG's webhook rules (formats, mutual exclusion, backupID required).
 */
import type { RecoveryTarget } from '../config/types.js';
import { parseLsn } from '../pg/lsn.js';

export type TargetKind = 'time' | 'lsn' | 'xid' | 'name' | 'immediate' | 'end-of-archive';

export interface ParsedTarget {
  kind: TargetKind;
  /** The manifest value (time as written, LSN, XID, restore point name). */
  value?: string;
  time?: Date;
  lsn?: bigint;
  /** undefined = PostgreSQL's default ("latest" since PostgreSQL 12). */
  timeline?: 'latest' | number;
  exclusive: boolean;
  backupID?: string;
}

/** Parses a targetTime in every form CNPG accepts; a time without zone is UTC (as CNPG's parser, running in UTC). */
export function parseTargetTime(text: string): Date {
  const pg = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::(\d{2}))?)?)?$/.exec(text);
  if (!pg) throw new RangeError(`not a recovery target time: "${text}"`);
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om, os] = pg;
  const ms = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  let epoch = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (!zulu && sign) {
    const offsetSeconds = Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0);
    epoch -= (sign === '+' ? 1 : -1) * offsetSeconds * 1000;
  }
  return new Date(epoch);
}

/**
 * recovery_target_time as CNPG renders it (machinery ConvertToPostgresFormat): RFC3339 becomes
 * "YYYY-MM-DD HH:MM:SS.ffffff+HH:MM" keeping its offset ("Z" -> "+00:00"); "YYYY-MM-DDTHH:MM:SS"
 * becomes "YYYY-MM-DD HH:MM:SS"; PostgreSQL's own format passes through unchanged.
 */
export function postgresTargetTime(text: string): string {
  const rfc = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  if (rfc) {
    const micros = (rfc[3] ?? '.').slice(1).padEnd(6, '0').slice(0, 6);
    const zone = rfc[4].toUpperCase() === 'Z' ? '+00:00' : rfc[4];
    return `${rfc[1]} ${rfc[2]}.${micros}${zone}`;
  }
  const noZone = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})$/.exec(text);
  if (noZone) return `${noZone[1]} ${noZone[2]}`;
  return text;
}

/** The target pgark plans with. Call recoveryTargetIssues first; this assumes a valid target. */
export function parseRecoveryTarget(rt: RecoveryTarget | undefined): ParsedTarget {
  const exclusive = rt?.exclusive === true;
  const timeline: ParsedTarget['timeline'] = !rt?.targetTLI ? undefined : rt.targetTLI === 'latest' ? 'latest' : Number(rt.targetTLI);
  const base = { exclusive, timeline, backupID: rt?.backupID || undefined };
  if (!rt) return { kind: 'end-of-archive', ...base };
  if (rt.targetTime) return { kind: 'time', value: rt.targetTime, time: parseTargetTime(rt.targetTime), ...base };
  if (rt.targetLSN) return { kind: 'lsn', value: rt.targetLSN, lsn: parseLsn(rt.targetLSN), ...base };
  if (rt.targetXID) return { kind: 'xid', value: rt.targetXID, ...base };
  if (rt.targetName) return { kind: 'name', value: rt.targetName, ...base };
  if (rt.targetImmediate) return { kind: 'immediate', ...base };
  return { kind: 'end-of-archive', ...base };
}

/**
 * The recovery_target_* settings in CNPG's order. recovery_target_inclusive is written whenever a
 * recoveryTarget section exists, even one that only selects a backup.
 */
export function recoveryTargetSettings(rt: RecoveryTarget | undefined): [string, string][] {
  if (!rt) return [];
  const out: [string, string][] = [];
  if (rt.targetTLI) out.push(['recovery_target_timeline', rt.targetTLI]);
  if (rt.targetXID) out.push(['recovery_target_xid', rt.targetXID]);
  if (rt.targetName) out.push(['recovery_target_name', rt.targetName]);
  if (rt.targetLSN) out.push(['recovery_target_lsn', rt.targetLSN]);
  if (rt.targetTime) out.push(['recovery_target_time', postgresTargetTime(rt.targetTime)]);
  if (rt.targetImmediate) out.push(['recovery_target', 'immediate']);
  out.push(['recovery_target_inclusive', rt.exclusive ? 'false' : 'true']);
  return out;
}

/** One line for humans: "time 2024-05-01 12:00:00+00 (inclusive) on timeline latest". */
export function describeTarget(t: ParsedTarget): string {
  const tl = t.timeline === undefined ? '' : ` on timeline ${t.timeline}`;
  const incl = t.kind === 'time' || t.kind === 'lsn' || t.kind === 'xid' ? (t.exclusive ? ' (exclusive)' : ' (inclusive)') : '';
  switch (t.kind) {
    case 'time':
      return `time ${t.value}${t.value === t.time!.toISOString() ? '' : ` (${t.time!.toISOString()})`}${incl}${tl}`;
    case 'lsn':
      return `LSN ${t.value}${incl}${tl}`;
    case 'xid':
      return `transaction ${t.value}${incl}${tl}`;
    case 'name':
      return `restore point "${t.value}"${tl}`;
    case 'immediate':
      return `immediate (end of the backup, first consistent point)${tl}`;
    case 'end-of-archive':
      return `end of the WAL archive${tl}`;
  }
}
