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
