import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { PgConnectionOptions } from '../../pg/connect.js';

interface CheckFlags extends ConfigOptions, PgConnectionOptions {
  cluster?: string;
}

/** `pgark check`: validate manifests, resolve secrets, probe the object stores and PostgreSQL. */
export function register(program: Command): void {
  const cmd = program
    .command('check')
    .description('preflight: validate manifests, resolve secrets, probe the object store and PostgreSQL');
  withOptions(cmd, 'check').action(
    action(async (flags: CheckFlags) => {
      const { checkCommand } = await import('../../commands/check.js');
      const pg = { pghost: flags.pghost, pgport: flags.pgport, pguser: flags.pguser, pgpassword: flags.pgpassword, pgdatabase: flags.pgdatabase };
      await checkCommand({ files: configFiles(flags), secretsDir: flags.secretsDir, cluster: flags.cluster, pg, json: flags.json });
    }),
  );
}
