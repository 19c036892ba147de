import type { Command } from 'commander';
import { action, configFiles, withConfigOptions, withPgOptions, type ConfigOptions } from '../common.js';
import type { PgConnectionOptions } from '../../pg/connect.js';
import { UserError } from '../../util/errors.js';

interface RestoreFlags extends ConfigOptions, PgConnectionOptions {
  cluster?: string;
  start?: boolean;
  dryRun?: boolean;
  jobs?: string;
  finishRecovery?: boolean;
  archiveEnd?: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new UserError(`${flag} must be a positive integer, got "${value}"`);
  return Number(value);
}

/** `pgark restore`: bootstrap.recovery of a Cluster manifest into a local data directory. */
export function register(program: Command): void {
  const cmd = program
    .command('restore')
    .description('recover a Cluster (spec.bootstrap.recovery) into an empty data directory: pre-checks, download, recovery settings')
    .option('--cluster <name>', 'the Cluster to recover when the manifests hold several')
    .option('--start', 'start PostgreSQL, wait until it reaches the target and promotes, ensure database/owner; leave it running')
    .option('--dry-run', 'print the plan (backup, WAL range, target, recoverable window, estimate) and change nothing')
    .option('--jobs <n>', 'archives downloaded at once (default: data.jobs of the source store, else 4)')
    .option('--finish-recovery', 'internal: run by recovery_end_command when PostgreSQL ends the recovery')
    .option('--archive-end <segment>', 'internal, with --finish-recovery: fail unless replay reached this segment');
  for (const hidden of ['--finish-recovery', '--archive-end']) cmd.options.find((o) => o.long === hidden)!.hideHelp();
  withPgOptions(withConfigOptions(cmd)).action(
    action(async (flags: RestoreFlags) => {
      const pgdata = flags.pgdata ?? process.env.PGDATA;
      if (!pgdata) throw new UserError('no data directory given', 'pass --pgdata DIR (an empty or absent directory) or set PGDATA');
      const files = configFiles(flags);
      if (flags.finishRecovery) {
        const { finishRecoveryCommand } = await import('../../commands/restore.js');
        await finishRecoveryCommand({ files, secretsDir: flags.secretsDir, cluster: flags.cluster, pgdata, archiveEnd: flags.archiveEnd });
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
          pghost: flags.pghost,
          pgport: positiveInt(flags.pgport, '--pgport'),
          pguser: flags.pguser ?? process.env.PGUSER,
          jobs: positiveInt(flags.jobs, '--jobs'),
        },
      });
    }),
  );
}
