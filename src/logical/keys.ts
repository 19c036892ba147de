/**
 * Object keys of logical dumps. One backup run writes every file under one UTC timestamp folder:
 *
 *   <scope>/logical_backups/<YYYYMMDDTHHMMSSZ>/<database>.<ext>        one per database
 *   <scope>/logical_backups/<YYYYMMDDTHHMMSSZ>/@globals.sql.gz         roles and tablespaces (all-databases mode)
 *   <dump key>.meta.json                                               sidecar, written last
 *
 * relative to the store root (s3://BUCKET/<prefix>, the Azure container/<prefix>, or a file:// directory).
 * The compact ISO-8601 timestamp sorts lexicographically in time order, so a plain listing is already
 * chronological. Database names are percent-encoded (encodeURIComponent), which also encodes '@', so no
 * database can collide with the globals file. <ext> is sql.gz / sql.zst / sql (plain SQL) or dump (pg_dump -Fc),
 * followed by .age when the dump is age-encrypted (--age-recipients).
 * Zalando's legacy `<scope>/logical_backups/<unix epoch>.sql.gz` keys are recognised for listing and restore.
 */
import { AGE_EXTENSION } from '../codec/age.js';

export type DumpFormat = 'plain' | 'custom';
export type DumpCodec = 'gzip' | 'zstd' | 'none';

export const LOGICAL_DIR = 'logical_backups';
export const META_SUFFIX = '.meta.json';
const GLOBALS_NAME = '@globals';

const CODEC_SUFFIX: Record<DumpCodec, string> = { gzip: '.gz', zstd: '.zst', none: '' };

/** 2026-11-24T20:43:18.123Z -> 20261124T204318Z */
export function formatStamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export function parseStamp(stamp: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function dumpExtension(format: DumpFormat, codec: DumpCodec, encrypted = false): string {
  // Custom format compresses internally; an outer codec would only burn CPU.
  return (format === 'custom' ? '.dump' : `.sql${CODEC_SUFFIX[codec]}`) + (encrypted ? AGE_EXTENSION : '');
}

export function runPrefix(scope: string, when: Date): string {
  return `${scope}/${LOGICAL_DIR}/${formatStamp(when)}/`;
}

export function databaseKey(scope: string, when: Date, database: string, format: DumpFormat, codec: DumpCodec, encrypted = false): string {
  return `${runPrefix(scope, when)}${encodeURIComponent(database)}${dumpExtension(format, codec, encrypted)}`;
}

export function globalsKey(scope: string, when: Date, codec: DumpCodec, encrypted = false): string {
  return `${runPrefix(scope, when)}${GLOBALS_NAME}${dumpExtension('plain', codec, encrypted)}`;
}

export function metaKey(dumpKey: string): string {
  return dumpKey + META_SUFFIX;
}

/** What a key says about a dump, before its sidecar is read. */
export interface ParsedDumpKey {
  key: string;
  /** Everything before "logical_backups/", e.g. "spilo/mycluster/" ('' when at the root). */
  scopePrefix: string;
  takenAt: Date;
  /** Undefined for legacy epoch keys, which do not name the database. */
  database?: string;
  kind: 'database' | 'globals';
  format: DumpFormat;
  codec: DumpCodec;
  /** age-encrypted (the .age suffix). */
  encrypted: boolean;
}

const DUMP_NAME_RE = /^(.+?)\.(sql\.gz|sql\.zst|sql|dump)(\.age)?$/;

function formatAndCodec(ext: string, age?: string): { format: DumpFormat; codec: DumpCodec; encrypted: boolean } {
  return { ...formatAndCodecOf(ext), encrypted: age !== undefined };
}

function formatAndCodecOf(ext: string): { format: DumpFormat; codec: DumpCodec } {
  switch (ext) {
    case 'sql.gz':
      return { format: 'plain', codec: 'gzip' };
    case 'sql.zst':
      return { format: 'plain', codec: 'zstd' };
    case 'sql':
      return { format: 'plain', codec: 'none' };
    default:
      return { format: 'custom', codec: 'none' };
  }
}

/** Format and codec from a dump's file name, for keys outside the pgark/operator layout. */
export function formatOfName(key: string): { format: DumpFormat; codec: DumpCodec; encrypted: boolean } | undefined {
  const m = DUMP_NAME_RE.exec(key.slice(key.lastIndexOf('/') + 1));
  return m ? formatAndCodec(m[2], m[3]) : undefined;
}

/** Parses a dump key (any depth of prefix before logical_backups/), or undefined for anything else. */
export function parseDumpKey(key: string): ParsedDumpKey | undefined {
  if (key.endsWith(META_SUFFIX)) return undefined;
  const at = key.lastIndexOf(`${LOGICAL_DIR}/`);
  if (at < 0 || (at > 0 && key[at - 1] !== '/')) return undefined;
  const scopePrefix = key.slice(0, at);
  const rest = key.slice(at + LOGICAL_DIR.length + 1).split('/');
  if (rest.length === 2) {
    const takenAt = parseStamp(rest[0]);
    const m = DUMP_NAME_RE.exec(rest[1]);
    if (!takenAt || !m) return undefined;
    let database: string;
    try {
      database = decodeURIComponent(m[1]);
    } catch {
      return undefined;
    }
    const globals = m[1] === GLOBALS_NAME;
    return { key, scopePrefix, takenAt, database: globals ? undefined : database, kind: globals ? 'globals' : 'database', ...formatAndCodec(m[2], m[3]) };
  }
  if (rest.length === 1) {
    const legacy = /^(\d{9,11})\.(sql\.gz|dump)$/.exec(rest[0]);
    if (!legacy) return undefined;
    return { key, scopePrefix, takenAt: new Date(Number(legacy[1]) * 1000), kind: 'database', ...formatAndCodec(legacy[2]) };
  }
  return undefined;
}
