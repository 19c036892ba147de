/**
 * The shape shared by both ways of reading a running server: a local source (pg_backup_start/stop
 * and the data directory read from disk) and a remote source (the replication protocol's
 * BASE_BACKUP). The runner turns what a source yields into barman-cloud's tars.
 */
export interface TablespaceFact {
  name: string;
  oid: number;
  location: string;
}

/** What barman records about the server before the copy (backup.info fields). */
export interface ServerFacts {
  /** server_version_num, e.g. 160004. */
  version: number;
  major: number;
  systemId: string;
  pgdata: string;
  walSegmentSize: number;
  configFile: string;
  hbaFile: string;
  identFile: string;
  includedFiles: string[];
  tablespaces: TablespaceFact[];
  inRecovery: boolean;
  /** Sum of pg_database_size over every database: the progress total. */
  clusterSize: number;
  /** How long a backup without an immediate checkpoint may wait for the one it starts from. */
  checkpointTimeoutSeconds: number;
}

export interface BackupStart {
  lsn: string;
  timeline: number;
  time: Date;
}

export interface BackupStop {
  lsn: string;
  timeline: number;
  time: Date;
  /** The backup_label text PostgreSQL produced; stored as the last member of data.tar. */
  labelFile: string;
}

export interface SourceEntryBase {
  /** Path relative to the archive's root, POSIX, no leading "./" ("" is the root itself). */
  path: string;
  mode: number;
  mtime: Date;
  /** Owner as the server's host has it; tar extraction as root restores it, as with barman's tars. */
  uid?: number;
  gid?: number;
}

export type SourceEntry =
  | (SourceEntryBase & { type: 'directory' })
  | (SourceEntryBase & { type: 'symlink'; linkname: string })
  | (SourceEntryBase & {
      type: 'file';
      size: number;
      body: AsyncIterable<Uint8Array>;
      /** A second, fresh read of the same file (local sources only): an incremental reads a file to compare it, then stores it. */
      reopen?: () => AsyncIterable<Uint8Array>;
    });

export interface SourceArchive {
  /** "data" for PGDATA, the tablespace oid otherwise: the tar's base name in the backup directory. */
  name: string;
  entries: AsyncIterable<SourceEntry>;
}

export interface BackupSource {
  readonly method: 'local' | 'remote';
  /** Starts the backup on the server (checkpoint; `fast` requests an immediate one). */
  start(label: string, fast: boolean): Promise<BackupStart>;
  /** Tablespaces first, PGDATA last; PGDATA's last entry is global/pg_control. */
  archives(): AsyncIterable<SourceArchive>;
  /** Ends the backup on the server; only after every archive was read. */
  stop(): Promise<BackupStop>;
  /** Closes connections; safe to call at any point (an unfinished backup is then aborted by the server). */
  close(): Promise<void>;
}
