import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { PgConnectionOptions } from '../../pg/connect.js';
import { UserError } from '../../util/errors.js';
import { flagValue, setting } from '../../util/options.js';

interface RestoreFlags extends ConfigOptions, PgConnectionOptions {
  cluster?: string;
  start?: boolean;
  dryRun?: boolean;
  delta?: boolean;
  jobs?: string;
  finishRecovery?: boolean;
  archiveEnd?: string;
  archiveAfter?: 'on' | 'off';
}

/** `pgark restore`: bootstrap.recovery of a Cluster manifest into a local data directory. */
export function register(program: Command): void {
  const cmd = program
    .command('restore')
    .description('recover a Cluster (spec.bootstrap.recovery) into an empty data directory: pre-checks, download, recovery settings');
  withOptions(cmd, 'restore').action(
    action(async (flags: RestoreFlags) => {
      const pgdata = flags.pgdata ?? setting('pgdata');
      if (!pgdata) throw new UserError('no data directory given', 'pass --pgdata DIR (an empty or absent directory) or set PGDATA');
      const files = configFiles(flags);
      if (flags.finishRecovery) {
        const { finishRecoveryCommand } = await import('../../commands/restore.js');
        await finishRecoveryCommand({ files, secretsDir: flags.secretsDir, cluster: flags.cluster, pgdata, archiveEnd: flags.archiveEnd, archiveAfter: flags.archiveAfter });
        return;
      }
      const { recoverCommand } = await import('../../commands/restore.js');
      await recoverCommand({
        files,
        secretsDir: flags.secretsDir,
        cluster: flags.cluster,
        json: Boolean(flags.json),
        recovery: {
          pgdata,
          start: flags.start,
          dryRun: flags.dryRun,
          delta: flags.delta,
          pghost: flags.pghost,
          pgport: flagValue('pgport', flags.pgport),
          pguser: flags.pguser ?? setting('pguser'),
          jobs: flagValue('restoreJobs', flags.jobs),
        },
      });
    }),
  );
}
