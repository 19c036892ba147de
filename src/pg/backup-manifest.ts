/**
 * PostgreSQL's backup_manifest (version 1, the format pg_basebackup writes and pg_verifybackup
 * reads): one JSON object with the files' sizes and checksums, the WAL range needed to make the
 * backup consistent, and a SHA-256 of the manifest itself. Stored as the member `backup_manifest`
 * of data.tar, so a data directory restored by barman-cloud-restore can be checked with
 * `pg_verifybackup`.
 */
import { createHash } from 'node:crypto';

export interface ManifestFile {
  path: string;
  size: number;
  mtime: Date;
  /** CRC-32C of the content as stored. */
  crc32c: number;
}

export interface WalRange {
  timeline: number;
  startLsn: string;
  endLsn: string;
}

/** PostgreSQL prints a CRC-32C checksum as the hex of its in-memory (little-endian) bytes. */
export function crc32cManifestHex(value: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b.toString('hex');
}

/** "2024-01-02 03:04:05 GMT", the Last-Modified format of backup_manifest. */
function manifestTime(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} GMT`;
}

/**
 * Renders the manifest. pg_verifybackup checks "Manifest-Checksum" as the SHA-256 of every byte up
 * to and including the newline before the last line, so the last line must hold only the checksum.
 */
export function renderBackupManifest(files: ManifestFile[], walRanges: WalRange[]): Buffer {
  const fileLines = files.map(
    (f) =>
      `{ "Path": ${JSON.stringify(f.path)}, "Size": ${f.size}, "Last-Modified": "${manifestTime(f.mtime)}", ` +
      `"Checksum-Algorithm": "CRC32C", "Checksum": "${crc32cManifestHex(f.crc32c)}" }`,
  );
  const walLines = walRanges.map(
    (w) => `{ "Timeline": ${w.timeline}, "Start-LSN": "${w.startLsn}", "End-LSN": "${w.endLsn}" }`,
  );
  const body =
    '{ "PostgreSQL-Backup-Manifest-Version": 1,\n' +
    '"Files": [\n' +
    fileLines.join(',\n') +
    (fileLines.length ? '\n' : '') +
    '],\n' +
    '"WAL-Ranges": [\n' +
    walLines.join(',\n') +
    (walLines.length ? '\n' : '') +
    '],\n';
  const checksum = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${checksum}"}\n`);
}

export const BACKUP_MANIFEST = 'backup_manifest';

/** A file as it was read back (restored or streamed from a tar): its size and CRC-32C. */
export interface FileDigest {
  size: number;
  crc32c: number;
}

/** One mismatch: the file it is about (none for the manifest itself) and the sentence saying what. */
export interface ManifestProblem {
  path?: string;
  message: string;
}

/** What comparing files with a manifest found: how many files it lists, and every mismatch. */
export interface ManifestCheck {
  files: number;
  problems: ManifestProblem[];
}

interface ManifestEntry {
  Path?: string;
  'Encoded-Path'?: string;
  Size: number;
  'Checksum-Algorithm'?: string;
  Checksum?: string;
}

/** PostgreSQL's rule: the SHA-256 of every byte up to and including the newline before the last line. */
function manifestChecksumProblem(text: string): string | undefined {
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  const cut = text.lastIndexOf('\n', end - 1) + 1;
  const stated = /^"Manifest-Checksum": "([0-9a-f]{64})"\}$/.exec(text.slice(cut, end))?.[1];
  if (!stated) return 'backup_manifest has no Manifest-Checksum as its last line';
  const actual = createHash('sha256').update(text.slice(0, cut)).digest('hex');
  return actual === stated ? undefined : `backup_manifest's own checksum is ${actual}, it states ${stated}`;
}

function pathOf(e: ManifestEntry): string {
  return e.Path ?? Buffer.from(e['Encoded-Path'] ?? '', 'hex').toString('utf8');
}

/**
 * Checks `found` (every regular file of the backup by path relative to PGDATA, tablespaces under
 * pg_tblspc/<oid>/) against the manifest text, as pg_verifybackup does: the manifest's own
 * checksum, each listed file's presence, size and checksum, and no file it does not list. Every
 * mismatch is returned, so a caller can stop at the first or report them all.
 */
export function checkAgainstManifest(text: string, found: ReadonlyMap<string, FileDigest>): ManifestCheck {
  const problems: ManifestProblem[] = [];
  const own = manifestChecksumProblem(text);
  if (own) problems.push({ message: own });
  let files: ManifestEntry[];
  try {
    files = (JSON.parse(text) as { Files: ManifestEntry[] }).Files;
    if (!Array.isArray(files)) throw new Error('it has no "Files" list');
  } catch (err) {
    problems.push({ message: `backup_manifest is not valid JSON (${(err as Error).message})` });
    return { files: 0, problems };
  }
  const listed = new Set<string>();
  for (const entry of files) {
    const name = pathOf(entry);
    listed.add(name);
    const got = found.get(name);
    if (!got) {
      problems.push({ path: name, message: `${name} is listed but was not in the backup's archives` });
      continue;
    }
    if (got.size !== entry.Size) problems.push({ path: name, message: `${name} has ${got.size} bytes, the manifest says ${entry.Size}` });
    const algorithm = entry['Checksum-Algorithm'] ?? 'NONE';
    if (algorithm === 'CRC32C') {
      const actual = crc32cManifestHex(got.crc32c);
      if (actual !== entry.Checksum) problems.push({ path: name, message: `${name} has CRC-32C ${actual}, the manifest says ${entry.Checksum}` });
    } else if (algorithm !== 'NONE') {
      problems.push({ path: name, message: `${name} is checksummed with ${algorithm}; pgark verifies CRC32C manifests only` });
    }
  }
  for (const name of found.keys()) {
    if (name !== BACKUP_MANIFEST && !listed.has(name)) problems.push({ path: name, message: `${name} was in the backup's archives but is not listed` });
  }
  return { files: listed.size, problems };
}
