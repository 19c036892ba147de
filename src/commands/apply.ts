/**
 * `pgark apply -f FILE...`: acts on manifests the way `kubectl apply` makes CNPG act on them
 * (see src/cli/commands/apply.ts): Backups are taken, one Cluster with bootstrap.recovery is recovered.
 */
import { loadContext } from '../config/index.js';
import { applyBackup } from '../backup/apply.js';
import { runRecovery } from '../recovery/apply.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import { UserError } from '../util/errors.js';
import { flagValue, setting } from '../util/options.js';
import { printBackupResult } from './backup.js';
import { printRecoveryResult } from './restore.js';

export interface ApplyCommandFlags extends PgConnectionOptions {
  secretsDir?: string;
  json?: boolean;
  start?: boolean;
  dryRun?: boolean;
  standbyHost?: string;
  standbyPort?: string;
}

export async function applyCommand(files: string[], flags: ApplyCommandFlags): Promise<void> {
  // Checked before any backup is taken: the recovery is the last step.
  const pgport = flagValue('pgport', flags.pgport);
  const pgdata = flags.pgdata ?? setting('pgdata');
  const ctx = await loadContext({ files, secretsDir: flags.secretsDir });
  const { backups, scheduledBackups } = ctx.manifests;
  const recoveries = ctx.manifests.clusters.filter((c) => c.spec.bootstrap?.recovery);
  if (backups.length === 0 && recoveries.length === 0) {
    const hint = scheduledBackups.length
      ? `ScheduledBackup ${scheduledBackups.map((s) => `"${s.metadata.name}"`).join(', ')} runs under \`pgark agent -f ...\`; check it with \`pgark schedule next\``
      : 'apply acts on Backup manifests and on Clusters with spec.bootstrap.recovery';
    throw new UserError('nothing to apply in the given manifests', hint);
  }
  if (recoveries.length > 1) {
    throw new UserError(
      `${recoveries.length} Clusters have bootstrap.recovery (${recoveries.map((c) => c.metadata.name).join(', ')}); one data directory holds one cluster`,
      'apply the recovery manifests one at a time, each with its own --pgdata',
    );
  }
  if (recoveries.length > 0 && !pgdata) {
    throw new UserError(
      `Cluster "${recoveries[0].metadata.name}" has bootstrap.recovery but no data directory was given`,
      'pass --pgdata DIR (an empty or absent directory) or set PGDATA',
    );
  }
  for (const backup of backups) printBackupResult(await applyBackup(ctx, backup, { pg: flags, standbyHost: flags.standbyHost, standbyPort: flags.standbyPort }), Boolean(flags.json));
  if (recoveries.length === 1) {
    const result = await runRecovery(ctx, recoveries[0], {
      pgdata: pgdata!,
      start: flags.start,
      dryRun: flags.dryRun,
      manifestFiles: files,
      secretsDir: flags.secretsDir,
      pghost: flags.pghost,
      pgport,
      pguser: flags.pguser,
    });
    printRecoveryResult(result, Boolean(flags.json));
  }
}
