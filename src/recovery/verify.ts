/**
 * Checks a restored backup against the backup_manifest pgark puts in data.tar (PostgreSQL's
 * format; the comparison is pg/backup-manifest.ts's, which `pgark verify` shares): the manifest's own SHA-256, then every file it lists must have
 * been restored with its size and CRC-32C, and nothing else may have been restored. The sizes and
 * checksums compared are those computed while the bytes were written (extract.ts), so the check
 * reads nothing back. barman-cloud backups carry no manifest: they are reported as not verified.
 *
 * Before that, each stored object (tar) is checked as a whole against the SHA-256 pgark recorded
 * in backup.info when it stored it: the manifest cannot see a flipped byte in tar padding or in a
 * header field it does not list (mtime, mode, owner), and a codec may decode a damaged stream into
 * the right bytes (an lz4 match offset flipped inside a run of zeros still copies zeros).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKUP_MANIFEST, checkAgainstManifest } from '../pg/backup-manifest.js';
import { checkObjectDigests } from '../catalog/backup-info.js';
import { PgarkError } from '../util/errors.js';
import type { WrittenFile } from './extract.js';

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
  const check = checkObjectDigests(recorded, objects);
  const first = check.problems[0];
  if (first) throw new DamagedObjectError(first.key, first.what);
  return check.expected;
}

export class RestoreVerificationError extends PgarkError {
  constructor(what: string) {
    super(`the restored backup does not match its backup_manifest: ${what}`, 1, 'the stored backup is damaged; restore another backup (nothing was kept of this attempt)');
  }
}

/** `written`: every regular file restored, by path relative to PGDATA (tablespaces under pg_tblspc/<oid>/). */
export function verifyRestoredFiles(pgdata: string, written: Map<string, WrittenFile>): Verification {
  const path = join(pgdata, BACKUP_MANIFEST);
  if (!existsSync(path)) {
    return { manifest: false, reason: 'the backup has no backup_manifest (barman-cloud writes none), so its files cannot be checked one by one' };
  }
  const check = checkAgainstManifest(readFileSync(path, 'utf8'), written);
  if (check.problems.length) throw new RestoreVerificationError(check.problems[0].message);
  return { manifest: true, files: check.files };
}
