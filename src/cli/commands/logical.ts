/**
 * `pgark logical backup | list | restore`: pg_dump-based backups to S3, Azure or file://, configured by
 * flags or the postgres-operator logical-backup variables; restore follows bin/restore.sh's contract.
 * See docs/logical-backups.md.
 */
import type { Command } from 'commander';
import { action } from '../common.js';
import { withOptions } from '../options.js';
import { RESTORE_VARIABLES } from '../../logical/restore-env.js';

export function register(program: Command): void {
  const logical = program.command('logical').description('logical (pg_dump) backups and the restore tool');

  withOptions(logical.command('backup').description('dump one database, or the globals and every database, straight into the store; then apply retention'), 'logical backup').action(
    action(async (opts: Record<string, unknown>) => {
      const { logicalBackupCommand } = await import('../../commands/logical.js');
      await logicalBackupCommand(opts);
    }),
  );

  withOptions(logical.command('list').description('dumps in the store, newest first, with size and age'), 'logical list').action(
    action(async (opts: Record<string, unknown>) => {
      const { logicalListCommand } = await import('../../commands/logical.js');
      await logicalListCommand(opts, Boolean(opts.json));
    }),
  );

  logical
    .command('restore')
    .description('restore a dump (bin/restore.sh); configured by environment variables, see docs/logical-backups.md')
    .addHelpText('after', `\nEnvironment:\n${Object.entries(RESTORE_VARIABLES)
      .map(([name, purpose]) => `  ${name.padEnd(30)} ${purpose}`)
      .join('\n')}\n`)
    .action(
      action(async () => {
        const { logicalRestoreCommand } = await import('../../commands/logical.js');
        await logicalRestoreCommand();
      }),
    );
}
