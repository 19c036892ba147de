/**
 * barman-cloud-backup-keep: the keep annotation of one backup, in barman's layout
 * (base/<id>/annotations/keep holding "full" or "standalone"), which barman's and pgark's
 * retention both honour. Exactly one of --target, --release, --status.
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import { catalogWriteOptions, KEEP_ANNOTATION, type KeepTarget } from '../../catalog/catalog.js';
import { backupPrefix, BACKUP_ID_RE } from '../../catalog/layout.js';
import { BarmanExit, readCatalog, resolveBackup, runCommand, withStore } from './shared.js';
import { EXIT, type BarmanInvocation, type BarmanLog } from './common.js';

export type KeepAction = { kind: 'target'; target: KeepTarget } | { kind: 'release' } | { kind: 'status' };

export interface BackupKeepOptions {
  target: ResolvedObjectStore;
  backupId: string;
  action: KeepAction;
}

export async function backupKeep(opts: BackupKeepOptions, log: BarmanLog, out: (text: string) => void): Promise<void> {
  const serverName = opts.target.serverName;
  await withStore(opts.target, async (store) => {
    const catalog = await readCatalog(store, serverName, log);
    // As barman, an id needs no backup.info to be released or asked about; a name must resolve.
    const id = BACKUP_ID_RE.test(opts.backupId) && opts.action.kind !== 'target' ? opts.backupId : resolveBackup(catalog, opts.backupId).backup_id;
    const key = backupPrefix(serverName, id) + KEEP_ANNOTATION;
    switch (opts.action.kind) {
      case 'status':
        out(`Keep: ${catalog.keep.get(id) ?? 'nokeep'}\n`);
        return;
      case 'release':
        await store.delete([key]);
        log.info(`Released keep annotation of backup ${id}`);
        return;
      case 'target': {
        const info = catalog.backups.find((b) => b.backup_id === id)!;
        if (info.status !== 'DONE') {
          throw new BarmanExit(`Cannot add keep to backup ${id} because it has status ${info.status}. Only backups with status DONE can be kept.`, EXIT.operation);
        }
        await store.put(key, Buffer.from(opts.action.target), { ...catalogWriteOptions(opts.target.config), contentType: 'text/plain' });
        log.info(`Backup ${id} is kept (${opts.action.target})`);
      }
    }
  });
}

export function runBackupKeep(inv: BarmanInvocation): Promise<number> {
  const { values } = inv;
  const action: KeepAction = values.release ? { kind: 'release' } : values.status ? { kind: 'status' } : { kind: 'target', target: values.target as KeepTarget };
  return runCommand(inv, 'source_url', (target, io) => backupKeep({ target, backupId: String(values.backup_id), action }, io.log, io.out));
}
