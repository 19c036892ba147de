/**
 * PostgreSQL major versions a recovery must agree on: the backup's (backup.info `version`), the
 * one in the Cluster's imageName tag, and the local server binaries that will replay it.
 */
import { findPgBinariesAsync, installedMajors, type PgBinaries } from '../pg/binaries.js';
import { UserError } from '../util/errors.js';

/** server_version_num -> major: 150004 -> 15, 90624 -> 9.6 is not supported by pgark anyway. */
export function majorOfVersionNum(version: number): number {
  return Math.floor(version / 10000);
}

/**
 * The major version in an image reference's tag: ghcr.io/cloudnative-pg/postgresql:16.2-bookworm -> 16.
 * undefined when there is no tag (digest-only or untagged) or the tag does not start with a number.
 */
export function imageMajor(imageName: string): number | undefined {
  const withoutDigest = imageName.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  if (colon <= lastSlash) return undefined;
  const m = /^(\d+)/.exec(withoutDigest.slice(colon + 1));
  return m ? Number(m[1]) : undefined;
}

/** Refuses an imageName whose tag names another major than the backup's (the seed's first pre-check). */
export function checkImageMajor(imageName: string | undefined, backupMajor: number, backupId: string): void {
  if (!imageName) return;
  const major = imageMajor(imageName);
  if (major === undefined || major === backupMajor) return;
  throw new UserError(
    `imageName ${imageName} is PostgreSQL ${major}, but backup ${backupId} was taken from PostgreSQL ${backupMajor}`,
    `a physical backup can only be recovered by the same major version: use an image tagged ${backupMajor} (e.g. ghcr.io/cloudnative-pg/postgresql:${backupMajor}), then upgrade after recovery`,
  );
}

/** The local binaries that will run the recovery, or a refusal naming both versions. */
export async function localBinariesFor(backupMajor: number, backupId: string): Promise<PgBinaries> {
  try {
    return await findPgBinariesAsync(backupMajor);
  } catch (err) {
    const have = installedMajors();
    throw new UserError(
      `backup ${backupId} is PostgreSQL ${backupMajor}, but no local PostgreSQL ${backupMajor} server binaries were found (installed here: ${have.length ? have.join(', ') : 'none'})`,
      `${(err as UserError).hint ?? ''}`.trim() || `install postgresql-${backupMajor} or set PGARK_PG_BINDIR`,
    );
  }
}
