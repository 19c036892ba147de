/**
 * backup_label files, as pg_backup_stop returns them and barman stores them in data.tar and
 * backup.info:
 *   START WAL LOCATION: 0/6000028 (file 000000010000000000000006)
 *   CHECKPOINT LOCATION: 0/6000060
 *   BACKUP METHOD: streamed
 *   BACKUP FROM: primary
 *   START TIME: 2024-01-02 03:04:05 UTC
 *   LABEL: Barman backup cloud 20240102T030405
 *   START TIMELINE: 1
 *   INCREMENTAL FROM LSN / INCREMENTAL FROM TLI (PostgreSQL 17 incremental backups)
 */
import { UserError } from '../util/errors.js';
import { parseLsn, type Lsn } from './lsn.js';
import { parseWalName } from './wal-names.js';

export interface BackupLabel {
  startLsn: Lsn;
  /** WAL segment named on the START WAL LOCATION line. */
  startWalFile: string;
  checkpointLsn: Lsn;
  backupMethod?: string;
  backupFrom?: string;
  /** As written, e.g. "2024-01-02 03:04:05 UTC" (the zone is the server's log_timezone). */
  startTime?: string;
  label?: string;
  /** Absent in labels from before PostgreSQL 11; then the timeline of startWalFile applies. */
  startTimeline?: number;
  incrementalFromLsn?: Lsn;
  incrementalFromTimeline?: number;
  /** Lines this parser does not know, by key. */
  other: Record<string, string>;
}

export function parseBackupLabel(text: string, source = 'backup_label'): BackupLabel {
  const fields = new Map<string, { value: string; line: number }>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    const colon = line.indexOf(': ');
    if (colon <= 0) throw new UserError(`${source} line ${i + 1}: "${line}" is not "KEY: value"`);
    fields.set(line.slice(0, colon), { value: line.slice(colon + 2), line: i + 1 });
  });
  const where = (key: string) => `${source} line ${fields.get(key)?.line ?? '?'} (${key})`;
  const required = (key: string): string => {
    const f = fields.get(key);
    if (!f) throw new UserError(`${source} has no "${key}:" line`, 'the file may be truncated or not a backup_label');
    return f.value;
  };
  const integer = (key: string): number | undefined => {
    const v = fields.get(key)?.value;
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UserError(`${where(key)}: "${v}" is not a number`);
    return Number(v);
  };

  const start = /^([0-9A-Fa-f]+\/[0-9A-Fa-f]+) \(file ([0-9A-Fa-f]{24})\)$/.exec(required('START WAL LOCATION'));
  if (!start) throw new UserError(`${where('START WAL LOCATION')}: expected "LSN (file WALNAME)"`);
  const startWalFile = parseWalName(start[2]!).base;
  const known = ['START WAL LOCATION', 'CHECKPOINT LOCATION', 'BACKUP METHOD', 'BACKUP FROM', 'START TIME', 'LABEL', 'START TIMELINE', 'INCREMENTAL FROM LSN', 'INCREMENTAL FROM TLI'];
  const label: BackupLabel = {
    startLsn: parseLsn(start[1]!, where('START WAL LOCATION')),
    startWalFile,
    checkpointLsn: parseLsn(required('CHECKPOINT LOCATION'), where('CHECKPOINT LOCATION')),
    other: Object.fromEntries([...fields].filter(([k]) => !known.includes(k)).map(([k, v]) => [k, v.value])),
  };
  const value = (key: string) => fields.get(key)?.value;
  if (value('BACKUP METHOD') !== undefined) label.backupMethod = value('BACKUP METHOD');
  if (value('BACKUP FROM') !== undefined) label.backupFrom = value('BACKUP FROM');
  if (value('START TIME') !== undefined) label.startTime = value('START TIME');
  if (value('LABEL') !== undefined) label.label = value('LABEL');
  const tli = integer('START TIMELINE');
  if (tli !== undefined) {
    if (tli !== parseWalName(startWalFile).timeline) {
      throw new UserError(`${where('START TIMELINE')}: timeline ${tli} disagrees with the start WAL file ${startWalFile}`);
    }
    label.startTimeline = tli;
  }
  const incLsn = value('INCREMENTAL FROM LSN');
  if (incLsn !== undefined) label.incrementalFromLsn = parseLsn(incLsn, where('INCREMENTAL FROM LSN'));
  const incTli = integer('INCREMENTAL FROM TLI');
  if (incTli !== undefined) label.incrementalFromTimeline = incTli;
  return label;
}
