/**
 * The result of `pgark verify` as data: what `--json` prints and what is stored under
 * <server>/pgark/verify/. Restore drills and the recoverability timeline read it, so its shape is
 * versioned: a reader checks `version` and ignores keys it does not know; a change that alters
 * the meaning of an existing key raises the version.
 */

export const VERIFY_RESULT_VERSION = 1;

/** One thing found wrong: the object (store key) it is about and what is wrong with it. */
export interface Problem {
  key: string;
  what: string;
}

export interface ObjectResult {
  key: string;
  /** Stored (compressed) bytes. */
  size: number;
  codec: string;
  /** Tar members read. */
  entries: number;
  /** 'match' / 'mismatch' against backup.info's #pgark_object_sha256, or 'not-recorded' (barman-cloud, older pgark). */
  sha256: 'match' | 'mismatch' | 'not-recorded' | 'not-read';
}

export interface BackupResult {
  backupId: string;
  backupName: string | null;
  /** Who wrote it: pgark records object digests and a backup_manifest; barman-cloud neither. */
  writer: 'pgark' | 'barman-cloud';
  timeline: number | null;
  beginWal: string | null;
  endWal: string | null;
  beginLsn: string | null;
  endLsn: string | null;
  endTime: string | null;
  ok: boolean;
  objects: ObjectResult[];
  /** Files checked against backup_manifest (size and checksum), or null when there is no manifest. */
  manifestFiles: number | null;
  problems: Problem[];
  /** What this backup's objects cannot prove, in words (a barman-cloud backup has no manifest). */
  notChecked: string[];
}

export interface WalGapResult {
  timeline: number;
  /** First and last missing segment. */
  from: string;
  to: string;
  missing: number;
  /** The WAL the gap takes away: [fromLsn, toLsn). */
  fromLsn: string;
  toLsn: string;
}

/** How far one backup can be recovered with the archive as it is: from its end to the first missing or bad segment. */
export interface RecoverableWindow {
  backupId: string;
  /** null when the backup cannot even be made consistent (WAL between its begin and end is missing or bad). */
  fromLsn: string | null;
  fromTime: string | null;
  toLsn: string | null;
  /** The last segment of the unbroken run from the backup's begin_wal. */
  lastSegment: string | null;
  /** What stops replay there: a gap, a bad segment, or the end of the archive. */
  endsAt: 'end-of-archive' | 'gap' | 'bad-segment' | 'begin-missing';
}

export interface WalResult {
  ok: boolean;
  segmentSize: number;
  /** Segments the chain needs, from the oldest chosen backup's begin_wal to the newest segment. */
  segmentsInChain: number;
  /** Segments read back and checked this run (--since-last reads only the new ones). */
  segmentsRead: number;
  firstSegment: string | null;
  lastSegment: string | null;
  /** The timeline path the chain follows, oldest first, each with the LSN where it begins. */
  timelines: { timeline: number; begin: string }[];
  historyFiles: string[];
  gaps: WalGapResult[];
  windows: RecoverableWindow[];
  problems: Problem[];
  notChecked: string[];
}

export interface VerifyResult {
  version: typeof VERIFY_RESULT_VERSION;
  serverName: string;
  /** The store, without credentials. */
  store: string;
  startedAt: string;
  finishedAt: string;
  /** True only when every chosen object and (with --wal) the chain verified. */
  ok: boolean;
  request: { backup: string; wal: boolean; sinceLast: boolean; jobs: number };
  /** The run --since-last continued from (its stored key), when there was one. */
  since: { key: string; newestBackupId: string | null; lastSegments: Record<string, string> } | null;
  objectsRead: number;
  bytesRead: number;
  backups: BackupResult[];
  wal: WalResult | null;
  /** Every problem of the backups and the WAL, in one list. */
  problems: Problem[];
  /** What the next --since-last run starts after: the newest backup id seen and the last segment read per timeline. */
  coverage: { newestBackupId: string | null; lastSegments: Record<string, string> };
  /** Where this result was stored (absent when storing it failed, see storeError). */
  storedAt?: string;
  storeError?: string;
}
