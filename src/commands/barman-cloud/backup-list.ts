/**
 * barman-cloud-backup-list: every backup of a server. JSON (what CNPG parses) lists every
 * readable backup.info whatever its status, oldest first; the console table, as barman's, only
 * DONE ones with their keep status.
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import { backupInfoToJson } from '../../catalog/backup-info.js';
import { pythonJson, readCatalog, runCommand, withStore } from './shared.js';
import type { BarmanInvocation, BarmanLog } from './common.js';

export interface BackupListOptions {
  target: ResolvedObjectStore;
  format: 'json' | 'console';
}

const COLUMNS = [20, 25, 30, 17, 20];

function row(cells: string[]): string {
  return cells.map((c, i) => c.padEnd(COLUMNS[i])).join('');
}

export async function backupList(opts: BackupListOptions, log: BarmanLog, out: (text: string) => void): Promise<void> {
  const serverName = opts.target.serverName;
  const catalog = await withStore(opts.target, (store) => readCatalog(store, serverName, log));
  if (opts.format === 'json') {
    out(`${pythonJson({ backups_list: catalog.backups.map(backupInfoToJson) })}\n`);
    return;
  }
  const lines = [row(['Backup ID', 'End Time', 'Begin Wal', 'Archival Status', 'Name'])];
  for (const b of catalog.backups) {
    if (b.status !== 'DONE') continue;
    const keep = catalog.keep.get(b.backup_id);
    const end = b.end_time ? b.end_time.isoformat().slice(0, 19).replace('T', ' ') : '';
    lines.push(row([b.backup_id, end, b.begin_wal ?? '', keep ? `KEEP:${keep.toUpperCase()}` : '', b.backup_name ?? '']));
  }
  out(`${lines.join('\n')}\n`);
}

export function runBackupList(inv: BarmanInvocation): Promise<number> {
  return runCommand(inv, 'source_url', (target, io) => backupList({ target, format: inv.values.format === 'json' ? 'json' : 'console' }, io.log, io.out));
}
