/**
 * `pgark apply -f backup.yaml`: a CNPG Backup manifest takes one backup of the Cluster it names,
 * recorded under the Backup's metadata.name (backup_name in backup.info), so that recovery can
 * later find it by that name as CNPG's bootstrap.recovery.backup.name does.
 */
import type { ConfigContext } from '../config/index.js';
import { backupStoreSpec, findCluster } from '../config/index.js';
import type { Backup } from '../config/types.js';
import { UserError } from '../util/errors.js';
import { backupRequest } from './request.js';
import { takeBackupWithin, type BackupResult } from './run.js';
import { backupMemory } from '../config/memory.js';
import type { PgConnectionOptions } from '../pg/connect.js';

export async function applyBackup(ctx: ConfigContext, backup: Backup, opts: { pg?: PgConnectionOptions; standbyHost?: string; standbyPort?: string }): Promise<BackupResult> {
  if (backup.spec.online === false) {
    throw new UserError(`Backup "${backup.metadata.name}": offline backups (spec.online: false) are not supported`, 'pgark takes online backups; remove spec.online');
  }
  const cluster = findCluster(ctx.manifests, backup.spec.cluster.name);
  const store = backupStoreSpec(ctx.manifests, cluster, backup);
  const req = await backupRequest(ctx, cluster, opts.pg ?? {}, { name: backup.metadata.name, store, target: backup.spec.target, standbyHost: opts.standbyHost, standbyPort: opts.standbyPort });
  return takeBackupWithin(backupMemory(), req);
}
