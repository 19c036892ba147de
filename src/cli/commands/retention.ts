/** `pgark retention`: apply the Cluster's retentionPolicy (barman's recovery window) to its object store. */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface RetentionCliOptions extends ConfigOptions {
  cluster?: string;
  policy?: string;
  dryRun?: boolean;
}

export function register(program: Command): void {
  withOptions(
    program
      .command('retention')
      .description(
        'delete backups and WAL outside spec.backup.retentionPolicy (Nd, Nw, Nm; a month is 31 days), as barman-cloud-backup-delete does; --dry-run prints the plan only',
      ),
    'retention',
  ).action(
    action(async (opts: RetentionCliOptions) => {
      const { runRetention } = await import('../../commands/retention.js');
      await runRetention({
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
        cluster: opts.cluster,
        policy: opts.policy,
        dryRun: Boolean(opts.dryRun),
        json: Boolean(opts.json),
      });
    }),
  );
}
