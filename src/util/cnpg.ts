/**
 * Names CloudNativePG and pgark agree on inside a data directory or a manifest. They live here,
 * at the bottom of the layers, because the WAL, backup and recovery code all need them and none
 * of those may import the others for a constant.
 */

/** CNPG's marker: while it exists, the empty-archive check runs before archiving. */
export const CHECK_EMPTY_MARKER = '.check-empty-wal-archive';

/** A Cluster annotated with this ("enabled") skips the empty-archive check, as in CNPG. */
export const SKIP_EMPTY_CHECK_ANNOTATION = 'cnpg.io/skipEmptyWalArchiveCheck';

/** Name of the runtime directory inside PGDATA; base backups should skip it. */
export const RUNTIME_DIR_NAME = 'pgark-wal';

/*
 * Files pgark writes into a restored data directory. They describe one recovery only, so base
 * backups leave them out and a later recovery never mistakes a copy from an earlier generation
 * for its own.
 */

/** Manifest pgark writes into PGDATA when the backup sits under another serverName than any manifest names. */
export const GENERATED_SOURCE_MANIFEST = 'pgark-recovery-source.yaml';

/** The server log of `pgark restore --start`, relative to PGDATA. */
export const RECOVERY_LOG = 'log/pgark-recovery.log';
