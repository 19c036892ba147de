/**
 * Checks a restored backup against the backup_manifest pgark puts in data.tar (PostgreSQL's
 * format, src/backup/manifest.ts): the manifest's own SHA-256, then every file it lists must have
 * been restored with its size and CRC-32C, and nothing else may have been restored. The sizes and
 * checksums compared are those computed while the bytes were written (extract.ts), so the check
 * reads nothing back. barman-cloud backups carry no manifest: they are reported as not verified.
 *
 * Before that, each stored object (tar) is checked as a whole against the SHA-256 pgark recorded
 * in backup.info when it stored it: the manifest cannot see a flipped byte in tar padding or in a
 * header field it does not list (mtime, mode, owner), and a codec may decode a damaged stream into
 * the right bytes (an lz4 match offset flipped inside a run of zeros still copies zeros).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32cManifestHex } from '../pg/backup-manifest.js';
import { PgarkError } from '../util/errors.js';
import type { WrittenFile } from './extract.js';

export const BACKUP_MANIFEST = 'backup_manifest';

export type Verification = { manifest: true; files: number } | { manifest: false; reason: string };

export type ObjectVerification = { digests: true; objects: number } | { digests: false; reason: string };

export class DamagedObjectError extends PgarkError {
  constructor(key: string, what: string) {
    super(`the stored object ${key} is damaged: ${what}`, 1, 'restore another backup (nothing was kept of this attempt)');
  }
}

/**
 * The digest each object must have, or why objects are not checked. An object the recorded set
 * does not name, or a recorded object that is gone, fails the restore before anything is downloaded.
 */
export function expectedDigests(recorded: Record<string, string> | undefined, objects: { key: string; name: string }[]): Map<string, string> | undefined {
  if (!recorded) return undefined;
  const expected = new Map<string, string>();
  for (const o of objects) {
    const digest = recorded[o.name];
    if (digest === undefined) throw new DamagedObjectError(o.key, 'backup.info records no SHA-256 for it, so it was not stored by this backup');
    expected.set(o.key, digest);
  }
  const names = new Set(objects.map((o) => o.name));
  const gone = Object.keys(recorded).find((name) => !names.has(name));
  const folder = objects[0].key.slice(0, -objects[0].name.length);
  if (gone !== undefined) throw new DamagedObjectError(folder + gone, 'backup.info records its SHA-256 but it is missing from the store');
  return expected;
}

export class RestoreVerificationError extends PgarkError {
  constructor(what: string) {
    super(`the restored backup does not match its backup_manifest: ${what}`, 1, 'the stored backup is damaged; restore another backup (nothing was kept of this attempt)');
  }
}

interface ManifestEntry {
  Path?: string;
  'Encoded-Path'?: string;
  Size: number;
  'Checksum-Algorithm'?: string;
  Checksum?: string;
}

/** PostgreSQL's rule: the SHA-256 of every byte up to and including the newline before the last line. */
function checkManifestChecksum(text: string): void {
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  const cut = text.lastIndexOf('\n', end - 1) + 1;
  const stated = /^"Manifest-Checksum": "([0-9a-f]{64})"\}$/.exec(text.slice(cut, end))?.[1];
  if (!stated) throw new RestoreVerificationError('backup_manifest has no Manifest-Checksum as its last line');
  const actual = createHash('sha256').update(text.slice(0, cut)).digest('hex');
  if (actual !== stated) throw new RestoreVerificationError(`backup_manifest's own checksum is ${actual}, it states ${stated}`);
}

function pathOf(e: ManifestEntry): string {
  return e.Path ?? Buffer.from(e['Encoded-Path'] ?? '', 'hex').toString('utf8');
}

/** `written`: every regular file restored, by path relative to PGDATA (tablespaces under pg_tblspc/<oid>/). */
export function verifyRestoredFiles(pgdata: string, written: Map<string, WrittenFile>): Verification {
  const path = join(pgdata, BACKUP_MANIFEST);
  if (!existsSync(path)) {
    return { manifest: false, reason: 'the backup has no backup_manifest (barman-cloud writes none), so its files cannot be checked one by one' };
  }
  const text = readFileSync(path, 'utf8');
  checkManifestChecksum(text);
  let files: ManifestEntry[];
  try {
    files = (JSON.parse(text) as { Files: ManifestEntry[] }).Files;
  } catch (err) {
    throw new RestoreVerificationError(`backup_manifest is not valid JSON (${(err as Error).message})`);
  }
  const listed = new Set<string>();
  for (const entry of files) {
    const name = pathOf(entry);
    listed.add(name);
    const got = written.get(name);
    if (!got) throw new RestoreVerificationError(`${name} is listed but was not in the backup's archives`);
    if (got.size !== entry.Size) throw new RestoreVerificationError(`${name} has ${got.size} bytes, the manifest says ${entry.Size}`);
    const algorithm = entry['Checksum-Algorithm'] ?? 'NONE';
    if (algorithm === 'CRC32C') {
      const actual = crc32cManifestHex(got.crc32c);
      if (actual !== entry.Checksum) throw new RestoreVerificationError(`${name} has CRC-32C ${actual}, the manifest says ${entry.Checksum}`);
    } else if (algorithm !== 'NONE') {
      throw new RestoreVerificationError(`${name} is checksummed with ${algorithm}; pgark verifies CRC32C manifests only`);
    }
  }
  for (const name of written.keys()) {
    if (name !== BACKUP_MANIFEST && !listed.has(name)) throw new RestoreVerificationError(`${name} was in the backup's archives but is not listed`);
  }
  return { manifest: true, files: listed.size };
}
