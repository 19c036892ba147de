/**
 * What pgark knows about a backup it is taking, in its own terms; turned into barman's
 * backup.info (3.4 key set) only when committing.
 */
import type { CodecName } from '../codec/types.js';
import type { ServerFacts } from './types.js';

export interface CopyStats {
  totalSeconds: number;
  workers: number;
  /** Seconds spent per tar base name ("data" or the tablespace oid). */
  perArchiveSeconds: Record<string, number>;
  copySeconds: number;
}

export interface BackupRecord {
  backupId: string;
  backupName?: string;
  status: 'DONE' | 'FAILED';
  error?: string;
  facts: ServerFacts;
  compression: CodecName;
  beginTime: Date;
  beginLsn: string;
  beginWal: string;
  beginOffset: number;
  timeline: number;
  endTime?: Date;
  endLsn?: string;
  endWal?: string;
  endOffset?: number;
  backupLabel?: string;
  /** Bytes stored in the object store (all tars, compressed). */
  storedBytes?: number;
  /** SHA-256 (hex) of each stored tar's bytes, by name below the backup's folder. */
  objectSha256?: Record<string, string>;
  copyStats?: CopyStats;
  /** Set for an incremental backup: the backup it is incremental to (barman 3.11's parent_backup_id). */
  parentBackupId?: string;
}
