/** `pgark retention`: apply the Cluster's retentionPolicy (barman's recovery window) to its object store. */
import type { Command } from 'commander';
import { action, configFiles, withConfigOptions, type ConfigOptions } from '../common.js';

interface RetentionCliOptions extends ConfigOptions {
  cluster?: string;
  policy?: string;
  dryRun?: boolean;
}

export function register(program: Command): void {
  withConfigOptions(
    program
      .command('retention')
      .description(
        'delete backups and WAL outside spec.backup.retentionPolicy (Nd, Nw, Nm; a month is 31 days), as barman-cloud-backup-delete does; --dry-run prints the plan only',
      )
      .option('--cluster <name>', 'Cluster to use when the manifests hold several')
      .option('--policy <Nd|Nw|Nm>', 'use this policy instead of spec.backup.retentionPolicy')
      .option('--dry-run', 'print what would be deleted and why; delete nothing'),
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
