import type { Command } from 'commander';
import { action, configFiles, withConfigOptions, withPgOptions, type ConfigOptions, type PgConnectionOptions } from '../common.js';
import { ConfigError } from '../../util/errors.js';

interface CheckFlags extends ConfigOptions, PgConnectionOptions {
  cluster?: string;
}

/** `pgark check`: validate manifests, resolve secrets, probe the object stores and PostgreSQL. */
export function register(program: Command): void {
  const cmd = program
    .command('check')
    .description('preflight: validate manifests, resolve secrets, probe the object store and PostgreSQL')
    .option('--cluster <name>', 'the Cluster to check when the manifests hold several');
  withPgOptions(withConfigOptions(cmd)).action(
    action(async (flags: CheckFlags) => {
      const { runCheck, renderTable } = await import('../../preflight/check.js');
      const pg = { pghost: flags.pghost, pgport: flags.pgport, pguser: flags.pguser, pgpassword: flags.pgpassword, pgdatabase: flags.pgdatabase };
      let report;
      try {
        report = await runCheck({ files: configFiles(flags), secretsDir: flags.secretsDir, cluster: flags.cluster, pg });
      } catch (err) {
        if (flags.json && err instanceof ConfigError) {
          process.stdout.write(JSON.stringify({ ok: false, issues: err.issues }, null, 2) + '\n');
          process.exitCode = err.exitCode;
          return;
        }
        throw err;
      }
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : renderTable(report));
      // A failed preflight is a problem with the user's setup, not a pgark failure: exit 2 like bad input.
      process.exitCode = report.ok ? 0 : 2;
    }),
  );
}
