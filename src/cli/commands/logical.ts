/**
 * `pgark logical backup | list | restore`: pg_dump-based backups to S3, Azure or file://, configured by
 * flags or the postgres-operator logical-backup variables; restore follows bin/restore.sh's contract.
 * See docs/logical-backups.md.
 */
import type { Command } from 'commander';
import { action, withPgOptions } from '../common.js';
import { RESTORE_VARIABLES } from '../../logical/restore-env.js';

function withLocationOptions(cmd: Command): Command {
  return cmd
    .option('--provider <name>', 's3 | az (azure) (default $LOGICAL_BACKUP_PROVIDER or s3)')
    .option('--destination <url>', 'a local file:// directory instead of S3/Azure')
    .option('--bucket <name>', 'S3 bucket (default $LOGICAL_BACKUP_S3_BUCKET)')
    .option('--prefix <path>', 'key prefix (default $LOGICAL_BACKUP_S3_BUCKET_PREFIX or "spilo")')
    .option('--endpoint <url>', 'S3-compatible endpoint (default $LOGICAL_BACKUP_S3_ENDPOINT)')
    .option('--region <region>', 'S3 region (default $LOGICAL_BACKUP_S3_REGION or $AWS_REGION)')
    .option('--sse <mode>', 'S3 server-side encryption: AES256 | aws:kms (default $LOGICAL_BACKUP_S3_SSE)')
    .option('--azure-account <name>', 'Azure storage account (default $LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME)')
    .option('--azure-container <name>', 'Azure container (default $LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER)')
    .option('--azure-endpoint <url>', 'blob service URL, e.g. Azurite (default $LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT)')
    .option('--scope <name>', 'cluster name, first folder of the dump keys (default $SCOPE)');
}

export function register(program: Command): void {
  const logical = program.command('logical').description('logical (pg_dump) backups and the restore tool');

  withPgOptions(
    withLocationOptions(
      logical
        .command('backup')
        .description('dump one database, or the globals and every database, straight into the store; then apply retention'),
    ),
  )
    .option('--database <name>', 'dump only this database (default: globals + every non-template database)')
    .option('--format <format>', 'plain (SQL, restores with psql) | custom (pg_dump -Fc, restores in parallel)', 'plain')
    .option('--compression <codec>', 'gzip | zstd | none, for plain dumps', 'gzip')
    .option('--retention <age>', 'delete runs older than this, e.g. "7 days" (default $LOGICAL_BACKUP_S3_RETENTION_TIME)')
    .option('--no-owner', 'leave ownership out of the dumps (pg_dump --no-owner)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (opts: Record<string, unknown>) => {
        const { logicalBackupCommand } = await import('../../commands/logical.js');
        await logicalBackupCommand(opts);
      }),
    );

  withLocationOptions(logical.command('list').description('dumps in the store, newest first, with size and age'))
    .option('--json', 'machine-readable output')
    .action(
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
