/**
 * barman's backup.info (../shared/reference/cnpg-barman-cloud.md section 3.5): the commit
 * marker and metadata of one base backup, and its JSON form for backup list/show (section 3.9).
 *
 * We WRITE exactly barman 3.4's key set, because barman <= 3.14 fails on any key it does not
 * know and Debian bookworm ships 3.4. We READ any barman version's file: later keys are kept
 * (and shown in JSON), unknown keys are ignored.
 *
 * pgark's own facts ride in comment lines, which barman's FieldListFile.load skips: today only
 * `#pgark_object_sha256 = {'data.tar.gz': '<hex>', ...}`, the SHA-256 of each tar's stored bytes.
 */
import { parsePyLiteral, PyFloat, pyRepr, PyTuple, type PyDict, type PyValue } from './pyliteral.js';
import { PyDateTime } from './pytime.js';

export type BackupStatus = 'EMPTY' | 'STARTED' | 'FAILED' | 'WAITING_FOR_WALS' | 'DONE' | 'SYNCING';

export interface Tablespace {
  name: string;
  oid: number;
  location: string;
}

/** Every field of barman's BackupInfo; `null` is Python's None. */
export interface BackupInfo {
  backup_id: string;
  // barman 3.4 key set
  backup_label: string | null;
  /** Omitted from the file when null. */
  backup_name: string | null;
  begin_offset: number | null;
  begin_time: PyDateTime | null;
  begin_wal: string | null;
  begin_xlog: string | null;
  compression: string | null;
  config_file: string | null;
  copy_stats: PyDict | null;
  deduplicated_size: number | null;
  end_offset: number | null;
  end_time: PyDateTime | null;
  end_wal: string | null;
  end_xlog: string | null;
  error: string | null;
  hba_file: string | null;
  ident_file: string | null;
  included_files: string[] | null;
  mode: string | null;
  pgdata: string | null;
  server_name: string | null;
  size: number | null;
  /** Omitted from the file when null; a dict (barman's SnapshotsInfo.to_dict()). */
  snapshots_info: PyValue;
  status: BackupStatus;
  systemid: string | null;
  tablespaces: Tablespace[] | null;
  timeline: number | null;
  version: number | null;
  xlog_segment_size: number;
  // Later barman versions: undefined when the file did not have the key. Never written.
  children_backup_ids?: string[] | null;
  cluster_size?: number | null;
  data_checksums?: string | null;
  parent_backup_id?: string | null;
  summarize_wal?: string | null;
  encryption?: string | null;
  /** pgark's comment line: SHA-256 (hex) of each stored tar, by name below the backup's folder. */
  pgark_object_sha256?: Record<string, string>;
}

const DIGEST_LINE = '#pgark_object_sha256';
const SHA256_HEX = /^[0-9a-f]{64}$/;

function loadDigests(text: string): Record<string, string> {
  let value: PyValue;
  try {
    value = parsePyLiteral(text);
  } catch (err) {
    throw new Error(`${DIGEST_LINE}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof PyTuple || value instanceof PyFloat) throw new Error(`${DIGEST_LINE}: not a dict`);
  const out: Record<string, string> = {};
  for (const [name, hex] of Object.entries(value as PyDict)) {
    if (typeof hex !== 'string' || !SHA256_HEX.test(hex)) throw new Error(`${DIGEST_LINE}: the digest of ${name} is not 64 hex digits`);
    out[name] = hex;
  }
  return out;
}

export const DEFAULT_XLOG_SEGMENT_SIZE = 16 * 1024 * 1024;

/** A BackupInfo with barman's defaults (status EMPTY, everything else None). */
export function emptyBackupInfo(backupId: string): BackupInfo {
  return {
    backup_id: backupId,
    backup_label: null,
    backup_name: null,
    begin_offset: null,
    begin_time: null,
    begin_wal: null,
    begin_xlog: null,
    compression: null,
    config_file: null,
    copy_stats: null,
    deduplicated_size: null,
    end_offset: null,
    end_time: null,
    end_wal: null,
    end_xlog: null,
    error: null,
    hba_file: null,
    ident_file: null,
    included_files: null,
    mode: null,
    pgdata: null,
    server_name: null,
    size: null,
    snapshots_info: null,
    status: 'EMPTY',
    systemid: null,
    tablespaces: null,
    timeline: null,
    version: null,
    xlog_segment_size: DEFAULT_XLOG_SEGMENT_SIZE,
  };
}

type FieldKind = 'text' | 'int' | 'time' | 'literal' | 'tablespaces' | 'ids';

/** barman 3.4's fields, sorted by name as FieldListFile.save writes them. */
const FIELDS_34: ReadonlyArray<readonly [keyof BackupInfo & string, FieldKind]> = [
  ['backup_label', 'literal'],
  ['backup_name', 'text'],
  ['begin_offset', 'int'],
  ['begin_time', 'time'],
  ['begin_wal', 'text'],
  ['begin_xlog', 'text'],
  ['compression', 'text'],
  ['config_file', 'text'],
  ['copy_stats', 'literal'],
  ['deduplicated_size', 'int'],
  ['end_offset', 'int'],
  ['end_time', 'time'],
  ['end_wal', 'text'],
  ['end_xlog', 'text'],
  ['error', 'text'],
  ['hba_file', 'text'],
  ['ident_file', 'text'],
  ['included_files', 'literal'],
  ['mode', 'text'],
  ['pgdata', 'text'],
  ['server_name', 'text'],
  ['size', 'int'],
  ['snapshots_info', 'literal'],
  ['status', 'text'],
  ['systemid', 'text'],
  ['tablespaces', 'tablespaces'],
  ['timeline', 'int'],
  ['version', 'int'],
  ['xlog_segment_size', 'int'],
];

/** Keys added after 3.4: read and shown, never written. */
const LATER_FIELDS: ReadonlyArray<readonly [keyof BackupInfo & string, FieldKind]> = [
  ['children_backup_ids', 'ids'],
  ['cluster_size', 'int'],
  ['data_checksums', 'text'],
  ['encryption', 'text'],
  ['parent_backup_id', 'text'],
  ['summarize_wal', 'text'],
];

const HIDE_IF_NULL = new Set(['backup_name', 'snapshots_info']);
const FIELD_KIND = new Map([...FIELDS_34, ...LATER_FIELDS]);

/** The value as barman's dump function turns it into text, or null for None. */
function dumpField(name: string, kind: FieldKind, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'literal':
      // null_repr: an empty string, dict or list is written as None.
      if (value === '' || (Array.isArray(value) && value.length === 0)) return null;
      if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return null;
      return pyRepr(value as PyValue);
    case 'tablespaces': {
      const list = value as Tablespace[];
      return list.length ? pyRepr(list.map((t) => new PyTuple([t.name, t.oid, t.location]))) : null;
    }
    case 'time':
      return (value as PyDateTime).toString();
    case 'int':
      if (!Number.isSafeInteger(value)) throw new Error(`backup.info field ${name} must be an integer, got ${String(value)}`);
      return String(value);
    case 'ids':
      return (value as string[]).length ? (value as string[]).join(',') : null;
    case 'text': {
      const text = String(value);
      // barman writes "%s=%s\n" and strips on load: the value must be a single line.
      if (/[\r\n]/.test(text)) throw new Error(`backup.info field ${name} must be a single line`);
      return text;
    }
  }
}

/** backup.info text exactly as barman 3.4's BackupInfo.save() writes it. */
export function serializeBackupInfo(info: BackupInfo): string {
  let out = '';
  for (const [name, kind] of FIELDS_34) {
    const text = dumpField(name, kind, info[name]);
    if (text === null && HIDE_IF_NULL.has(name)) continue;
    out += `${name}=${text ?? 'None'}\n`;
  }
  const digests = info.pgark_object_sha256;
  if (digests && Object.keys(digests).length) out += `${DIGEST_LINE} = ${pyRepr(digests)}\n`;
  return out;
}

/** A single-line error text for the `error` field (barman keeps only the first line of an exception). */
export function oneLineError(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function loadField(name: string, kind: FieldKind, text: string): unknown {
  switch (kind) {
    case 'text':
      return text;
    case 'int':
      if (!/^[+-]?\d+$/.test(text)) throw new Error(`field ${name}: not an integer: ${JSON.stringify(text)}`);
      return Number(text);
    case 'time':
      return PyDateTime.parse(text);
    case 'ids':
      return text ? text.split(',') : null;
    case 'literal': {
      const value = parsePyLiteral(text);
      if (name === 'backup_label' && typeof value !== 'string') throw new Error('field backup_label: not a string');
      if (name === 'included_files' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
        throw new Error('field included_files: not a list of strings');
      }
      if (name === 'copy_stats' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
        throw new Error('field copy_stats: not a dict');
      }
      return value;
    }
    case 'tablespaces': {
      const value = parsePyLiteral(text);
      if (!Array.isArray(value)) throw new Error('field tablespaces: not a list');
      if (value.length === 0) return null;
      return value.map((item) => {
        const parts = item instanceof PyTuple ? item.items : Array.isArray(item) ? item : null;
        if (!parts || parts.length !== 3 || typeof parts[0] !== 'string' || typeof parts[2] !== 'string') {
          throw new Error('field tablespaces: each item must be (name, oid, location)');
        }
        const oid = Number(parts[1]);
        if (!Number.isInteger(oid)) throw new Error('field tablespaces: oid is not an integer');
        return { name: parts[0], oid, location: parts[2] };
      });
    }
  }
}

/**
 * Parses backup.info text of any barman version, as FieldListFile.load does (blank and '#'
 * lines skipped, split on the first '=', both sides stripped, 'None' is null), tolerating
 * unknown keys. Throws on a malformed line or value.
 */
export function parseBackupInfo(text: string, backupId: string): BackupInfo {
  const info = emptyBackupInfo(backupId) as unknown as Record<string, unknown>;
  for (const rawLine of text.split('\n')) {
    const digests = rawLine.startsWith(DIGEST_LINE) ? /^#pgark_object_sha256\s*=(.*)$/.exec(rawLine) : null;
    if (digests) info.pgark_object_sha256 = loadDigests(digests[1].trim());
    if (rawLine.trim() === '' || rawLine.trim().startsWith('#')) continue;
    const eq = rawLine.indexOf('=');
    if (eq < 0) throw new Error(`invalid line ${JSON.stringify(rawLine.trim())}`);
    const name = rawLine.slice(0, eq).trim();
    const value = rawLine.slice(eq + 1).trim();
    const kind = FIELD_KIND.get(name as keyof BackupInfo & string);
    if (!kind) continue;
    info[name] = value === 'None' ? null : loadField(name, kind, value);
  }
  const result = info as unknown as BackupInfo;
  if (!isStatus(result.status)) throw new Error(`unknown status ${JSON.stringify(result.status)}`);
  return result;
}

function isStatus(s: unknown): s is BackupStatus {
  return ['EMPTY', 'STARTED', 'FAILED', 'WAITING_FOR_WALS', 'DONE', 'SYNCING'].includes(s as string);
}

/** JSON types only. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function toJsonValue(value: PyValue): JsonValue {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))) as JsonValue;
}

/**
 * One entry of `barman-cloud-backup-list --format json` (`backups_list[]`) and the value of
 * `barman-cloud-backup-show --format json`: BackupInfo.to_json() of barman >= 3.12.1.
 * As in barman, backup_label is its repr() text (to_dict() uses the dumped value), copy_stats,
 * included_files and tablespaces are native, times are ctime() plus *_iso, and backup_id comes
 * after the sorted fields.
 */
export function backupInfoToJson(info: BackupInfo): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  const fields = [...FIELDS_34, ...LATER_FIELDS].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, kind] of fields) {
    const value = info[name];
    if (value === undefined) continue;
    if (value === null && HIDE_IF_NULL.has(name)) continue;
    if (value === null) out[name] = null;
    else if (kind === 'time') out[name] = (value as PyDateTime).ctime();
    else if (kind === 'tablespaces') out[name] = (value as Tablespace[]).map((t) => [t.name, t.oid, t.location]);
    else if (name === 'backup_label') out[name] = dumpField(name, kind, value);
    else if (kind === 'ids') out[name] = dumpField(name, kind, value);
    else if (kind === 'literal') out[name] = toJsonValue(value as PyValue);
    else out[name] = value as JsonValue;
  }
  out.backup_id = info.backup_id;
  if (info.begin_time) out.begin_time_iso = info.begin_time.isoformat();
  if (info.end_time) out.end_time_iso = info.end_time.isoformat();
  return out;
}

/** The digest each stored object must have, and every object the recorded set and the store disagree on. */
export interface ObjectDigestCheck {
  expected: Map<string, string>;
  problems: { key: string; what: string }[];
}

/**
 * Matches the recorded #pgark_object_sha256 set with the objects of one backup (`name` is the key
 * below the backup's folder): an object it does not name was not stored by this backup, and a
 * name it records that the store lacks is a lost object.
 */
export function checkObjectDigests(recorded: Record<string, string>, objects: { key: string; name: string }[]): ObjectDigestCheck {
  const check: ObjectDigestCheck = { expected: new Map(), problems: [] };
  for (const o of objects) {
    const digest = recorded[o.name];
    if (digest === undefined) check.problems.push({ key: o.key, what: 'backup.info records no SHA-256 for it, so it was not stored by this backup' });
    else check.expected.set(o.key, digest);
  }
  const names = new Set(objects.map((o) => o.name));
  const folder = objects.length ? objects[0].key.slice(0, -objects[0].name.length) : '';
  for (const name of Object.keys(recorded)) {
    if (!names.has(name)) check.problems.push({ key: folder + name, what: 'backup.info records its SHA-256 but it is missing from the store' });
  }
  return check;
}
