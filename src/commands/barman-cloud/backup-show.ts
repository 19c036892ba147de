/**
 * barman-cloud-backup-show: one backup's metadata. JSON is `{<server_name>: to_json()}`; the key
 * is backup.info's server_name, "cloud" for barman-cloud's and pgark's backups, which is the only
 * key CNPG reads. The console form follows barman's show-backup layout.
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import { backupInfoToJson, type BackupInfo } from '../../catalog/backup-info.js';
import { pythonJson, readCatalog, resolveBackup, runCommand, withStore } from './shared.js';
import type { BarmanInvocation, BarmanLog } from './common.js';

export interface BackupShowOptions {
  target: ResolvedObjectStore;
  backupId: string;
  format: 'json' | 'console';
}

const ROW = (k: string, v: unknown) => `  ${k.padEnd(23)}: ${v === null || v === undefined ? 'None' : String(v)}`;
const NESTED = (k: string, v: unknown) => `    ${k.padEnd(21)}: ${v === null || v === undefined ? 'None' : String(v)}`;

/** barman's statuses for which the copy is complete (BackupInfo.STATUS_COPY_DONE). */
const COPY_DONE = new Set(['WAITING_FOR_WALS', 'DONE']);

function consoleText(b: BackupInfo): string {
  const lines = [`Backup ${b.backup_id}:`];
  if (b.backup_name !== null) lines.push(ROW('Backup Name', b.backup_name));
  lines.push(ROW('Server Name', b.server_name));
  if (b.systemid) lines.push(ROW('System Id', b.systemid));
  lines.push(ROW('Status', b.status));
  if (!COPY_DONE.has(b.status)) {
    if (b.error) lines.push(ROW('Error', b.error));
    return `${lines.join('\n')}\n`;
  }
  lines.push(ROW('PostgreSQL Version', b.version), ROW('PGDATA directory', b.pgdata), '');
  if (b.tablespaces?.length) {
    lines.push('  Tablespaces:', ...b.tablespaces.map((t) => NESTED(t.name, `${t.location} (oid: ${t.oid})`)), '');
  }
  lines.push(
    '  Base backup information:',
    NESTED('Timeline', b.timeline),
    NESTED('Begin WAL', b.begin_wal),
    NESTED('End WAL', b.end_wal),
    NESTED('Begin time', b.begin_time?.toString()),
    NESTED('End time', b.end_time?.toString()),
    NESTED('Begin Offset', b.begin_offset),
    NESTED('End Offset', b.end_offset),
    NESTED('Begin LSN', b.begin_xlog),
    NESTED('End LSN', b.end_xlog),
    '',
  );
  return `${lines.join('\n')}\n`;
}

export async function backupShow(opts: BackupShowOptions, log: BarmanLog, out: (text: string) => void): Promise<void> {
  const serverName = opts.target.serverName;
  const info = await withStore(opts.target, async (store) => resolveBackup(await readCatalog(store, serverName, log), opts.backupId));
  out(opts.format === 'json' ? `${pythonJson({ [info.server_name ?? 'cloud']: backupInfoToJson(info) })}\n` : consoleText(info));
}

export function runBackupShow(inv: BarmanInvocation): Promise<number> {
  const { values } = inv;
  return runCommand(inv, 'source_url', (target, io) => backupShow({ target, backupId: String(values.backup_id), format: values.format === 'json' ? 'json' : 'console' }, io.log, io.out));
}
