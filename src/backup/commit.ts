/**
 * The commit of a backup: backup.info, written once, after every tar is stored and the end WAL is
 * archived. Only barman 3.4's keys are written (catalog/backup-info.ts), with server_name=cloud as
 * barman-cloud writes it (CNPG reads `barman-cloud-backup-show` output keyed by it).
 */
import type { ObjectStore, PutOptions } from '../storage/types.js';
import { BACKUP_ID_RE } from '../catalog/layout.js';
import { prefixOf, serializeIncrementalInfo } from '../catalog/incremental.js';
import { emptyBackupInfo, oneLineError, serializeBackupInfo, type BackupInfo } from '../catalog/backup-info.js';
import { PyDateTime } from '../catalog/pytime.js';
import { PyFloat, type PyDict } from '../catalog/pyliteral.js';
import { UserError } from '../util/errors.js';
import type { BackupRecord } from './record.js';

const RESERVED_NAMES = new Set(['latest', 'last', 'oldest', 'first', 'last-failed']);

/** barman's check_backup_name: a name must not look like a backup id or a shortcut. */
export function checkBackupName(name: string): void {
  if (name.trim() === '') throw new UserError('backup name must not be empty');
  if (BACKUP_ID_RE.test(name)) throw new UserError(`backup name "${name}" looks like a backup id (YYYYMMDDTHHMMSS)`, 'choose a name that recovery can tell apart from an id');
  if (RESERVED_NAMES.has(name)) throw new UserError(`backup name "${name}" is reserved`, `names other than ${[...RESERVED_NAMES].join(', ')} are accepted`);
  if (/[\r\n]/.test(name)) throw new UserError('backup name must be a single line');
}

function seconds(n: number): PyFloat {
  return new PyFloat(Math.round(n * 1e6) / 1e6);
}

export function recordToBackupInfo(r: BackupRecord): BackupInfo {
  const info = emptyBackupInfo(r.backupId);
  const f = r.facts;
  const stats = r.copyStats;
  let copyStats: PyDict | null = null;
  if (stats) {
    const per = (value: (k: string) => PyFloat | number): PyDict => Object.fromEntries(Object.keys(stats.perArchiveSeconds).map((k) => [k, value(k)]));
    copyStats = {
      total_time: seconds(stats.totalSeconds),
      number_of_workers: stats.workers,
      analysis_time: 0,
      analysis_time_per_item: per(() => 0),
      copy_time_per_item: per((k) => seconds(stats.perArchiveSeconds[k])),
      serialized_copy_time_per_item: per((k) => seconds(stats.perArchiveSeconds[k])),
      copy_time: seconds(stats.copySeconds),
      serialized_copy_time: seconds(stats.copySeconds),
    };
  }
  return {
    ...info,
    backup_label: r.backupLabel ?? null,
    backup_name: r.backupName ?? null,
    begin_offset: r.beginOffset,
    begin_time: PyDateTime.fromDate(r.beginTime),
    begin_wal: r.beginWal,
    begin_xlog: r.beginLsn,
    // barman-cloud restores by file extension; pgark records the codec for its own listing.
    compression: r.compression === 'none' ? null : r.compression,
    config_file: f.configFile,
    copy_stats: copyStats,
    end_offset: r.endOffset ?? null,
    end_time: r.endTime ? PyDateTime.fromDate(r.endTime) : null,
    end_wal: r.endWal ?? null,
    end_xlog: r.endLsn ?? null,
    error: r.error ? oneLineError(r.error) : null,
    hba_file: f.hbaFile,
    ident_file: f.identFile,
    included_files: f.includedFiles.length ? f.includedFiles : null,
    pgdata: f.pgdata,
    server_name: 'cloud',
    size: r.storedBytes ?? null,
    status: r.status,
    systemid: f.systemId,
    tablespaces: f.tablespaces.length ? f.tablespaces.map((t) => ({ name: t.name, oid: t.oid, location: t.location })) : null,
    timeline: r.timeline,
    version: f.version,
    xlog_segment_size: f.walSegmentSize,
    pgark_object_sha256: r.objectSha256,
    ...(r.parentBackupId ? { parent_backup_id: r.parentBackupId } : {}),
  };
}

export async function commitBackupInfo(store: ObjectStore, serverName: string, record: BackupRecord, objectOptions: Pick<PutOptions, 'tags' | 'encryption'> = {}): Promise<void> {
  const info = recordToBackupInfo(record);
  const text = record.parentBackupId ? serializeIncrementalInfo(info) : serializeBackupInfo(info);
  await store.put(`${prefixOf(serverName, info)}backup.info`, Buffer.from(text), objectOptions);
}

/** Refuses a name another backup of this server already has (barman's name lookup fails on duplicates). */
export async function ensureNameIsFree(store: ObjectStore, serverName: string, name: string): Promise<void> {
  checkBackupName(name);
  const { listBackups } = await import('../catalog/catalog.js');
  const taken = (await listBackups(store, serverName)).backups.find((b) => b.backup_name === name);
  if (taken) throw new UserError(`backup name "${name}" is already used by backup ${taken.backup_id}`, 'choose another name, or delete that backup first');
}
