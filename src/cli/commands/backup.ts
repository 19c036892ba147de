/**
 * `pgark backup` takes a base backup; `pgark backup list|show|delete` manage the catalog.
 *
 * commander runs the parent's action when no subcommand name comes first, so `backup` itself
 * takes the backup. The parent's options (-f, --secrets-dir, --json, --cluster) may appear on
 * either side of the subcommand name; subcommands read them with optsWithGlobals().
 */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { PgConnectionOptions } from '../../pg/connect.js';

interface BackupCliOptions extends ConfigOptions, PgConnectionOptions {
  cluster?: string;
  name?: string;
  immediateCheckpoint?: boolean;
  compression?: string;
  jobs?: string;
  method?: string;
  walTimeout?: string;
  type?: string;
  progress: boolean;
  target?: string;
  standbyHost?: string;
  standbyPort?: string;
}

function clusterOptions(opts: BackupCliOptions) {
  return { files: configFiles(opts), secretsDir: opts.secretsDir, cluster: opts.cluster, json: Boolean(opts.json) };
}

export function register(program: Command): void {
  const backup = withOptions(
    program
      .command('backup')
      .description('take an online base backup into the Cluster\'s barmanObjectStore (barman-cloud layout); see also backup list|show|delete'),
    'backup',
  ).action(
    action(async (opts: BackupCliOptions) => {
      const { backupCommand } = await import('../../commands/backup.js');
      await backupCommand({
        ...clusterOptions(opts),
        pg: opts,
        overrides: {
          name: opts.name,
          immediateCheckpoint: opts.immediateCheckpoint,
          compression: opts.compression,
          jobs: opts.jobs,
          method: opts.method,
          walTimeout: opts.walTimeout,
          progress: opts.progress,
          type: opts.type,
          target: opts.target,
          standbyHost: opts.standbyHost,
          standbyPort: opts.standbyPort,
        },
      });
    }),
  );

  const globals = (cmd: Command) => cmd.optsWithGlobals() as BackupCliOptions;
  const sharedOptions = '\nAlso takes -f/--file, --secrets-dir, --cluster and --json (the options of "pgark backup"), before or after the subcommand.';

  backup
    .command('list')
    .addHelpText('after', sharedOptions)
    .description('list the backups in the Cluster\'s object store (--json: barman-cloud-backup-list --format json keys, plus pgark_*)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const { listCommand } = await import('../../commands/backup.js');
        await listCommand(clusterOptions(globals(cmd)));
      }),
    );

  backup
    .command('show')
    .addHelpText('after', sharedOptions)
    .description('show one backup (--json: barman-cloud-backup-show --format json, keyed by server_name)')
    .argument('<backup>', 'backup id (YYYYMMDDTHHMMSS), backup name, or latest/oldest')
    .action(
      action(async (id: string, _o: unknown, cmd: Command) => {
        const { showCommand } = await import('../../commands/backup.js');
        await showCommand(clusterOptions(globals(cmd)), id);
      }),
    );

  withOptions(
    backup
      .command('delete')
      .addHelpText('after', sharedOptions)
      .description('delete one backup and its objects; also removes an incomplete backup (a directory without backup.info); refuses a backup an incremental needs unless --cascade')
      .argument('<backup>', 'backup id or backup name'),
    'backup delete',
  ).action(
    action(async (id: string, _o: unknown, cmd: Command) => {
      const { deleteCommand } = await import('../../commands/backup.js');
      const o = globals(cmd) as BackupCliOptions & { cascade?: boolean };
      await deleteCommand({ ...clusterOptions(o), cascade: o.cascade }, id);
    }),
  );
}
