/**
 * `pgark apply -f FILE...`: acts on manifests the way `kubectl apply` makes CNPG act on them.
 * A Backup takes that backup (named after metadata.name); a Cluster with spec.bootstrap.recovery
 * is recovered into --pgdata. Other documents (Secrets, Clusters without recovery) are context.
 * A ScheduledBackup is run by `pgark agent`, so apply points there instead of running it.
 */
import type { Command } from 'commander';
import { action, configFiles, withConfigOptions, withPgOptions, type ConfigOptions, type PgConnectionOptions } from '../common.js';
import { UserError } from '../../util/errors.js';

interface ApplyFlags extends ConfigOptions, PgConnectionOptions {
  start?: boolean;
  dryRun?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('apply')
    .description('act on manifests: a Backup takes that backup; a Cluster with bootstrap.recovery is recovered into --pgdata')
    .option('--start', 'recovery: start PostgreSQL, wait for the target and promotion, and leave it running')
    .option('--dry-run', 'recovery: print the plan and change nothing');
  withPgOptions(withConfigOptions(cmd)).action(
    action(async (flags: ApplyFlags) => {
      const files = configFiles(flags);
      if (files.length === 0) throw new UserError('no manifests given', 'pass -f FILE (repeatable) or set PGARK_CONFIG');
      const { loadContext } = await import('../../config/index.js');
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
      if (recoveries.length > 0 && !(flags.pgdata ?? process.env.PGDATA)) {
        throw new UserError(
          `Cluster "${recoveries[0].metadata.name}" has bootstrap.recovery but no data directory was given`,
          'pass --pgdata DIR (an empty or absent directory) or set PGDATA',
        );
      }
      for (const backup of backups) {
        const { applyBackup } = await import('../../backup/apply.js');
        await applyBackup(ctx, backup, { json: flags.json, pg: flags });
      }
      if (recoveries.length === 1) {
        const { applyRecovery } = await import('../../recovery/apply.js');
        await applyRecovery(ctx, recoveries[0], {
          pgdata: (flags.pgdata ?? process.env.PGDATA)!,
          start: flags.start,
          dryRun: flags.dryRun,
          json: flags.json,
          manifestFiles: files,
          secretsDir: flags.secretsDir,
          pghost: flags.pghost,
          pgport: flags.pgport === undefined ? undefined : Number(flags.pgport),
          pguser: flags.pguser,
        });
      }
    }),
  );
}
