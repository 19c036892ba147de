/**
 * Files pgark itself writes into a restored data directory. They describe one recovery only, so
 * base backups leave them out (src/backup/exclusions.ts) and a later recovery never mistakes a
 * copy from an earlier generation for its own.
 */

/** Manifest pgark writes into PGDATA when the backup sits under another serverName than any manifest names. */
export const GENERATED_SOURCE_MANIFEST = 'pgark-recovery-source.yaml';

/** The server log of `pgark restore --start`, relative to PGDATA. */
export const RECOVERY_LOG = 'log/pgark-recovery.log';
