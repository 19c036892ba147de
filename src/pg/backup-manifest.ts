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
