/**
 * `pgark apply -f FILE...`: acts on manifests the way `kubectl apply` makes CNPG act on them.
 * A Backup takes that backup (named after metadata.name); a Cluster with spec.bootstrap.recovery
 * is recovered into --pgdata. Other documents (Secrets, Clusters without recovery) are context.
 * A ScheduledBackup is run by `pgark agent`, so apply points there instead of running it.
 */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { PgConnectionOptions } from '../../pg/connect.js';
import { UserError } from '../../util/errors.js';

interface ApplyFlags extends ConfigOptions, PgConnectionOptions {
  start?: boolean;
  dryRun?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('apply')
    .description('act on manifests: a Backup takes that backup; a Cluster with bootstrap.recovery is recovered into --pgdata');
  withOptions(cmd, 'apply').action(
    action(async (flags: ApplyFlags) => {
      const files = configFiles(flags);
      if (files.length === 0) throw new UserError('no manifests given', 'pass -f FILE (repeatable) or set PGARK_CONFIG');
      const { applyCommand } = await import('../../commands/apply.js');
      await applyCommand(files, flags);
    }),
  );
}
