/** `pgark verify`: read backups (and with --wal the WAL chain) back from the store and check every object. */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface VerifyCliOptions extends ConfigOptions {
  cluster?: string;
  backup?: string;
  wal?: boolean;
  sinceLast?: boolean;
  jobs?: string;
  progress: boolean;
}

export function register(program: Command): void {
  withOptions(
    program
      .command('verify')
      .description(
        'read backups back from the store and check every object (codec, tar, SHA-256, backup_manifest, backup.info); --wal checks the WAL chain; exit 0 only when everything verified, 1 when something is bad',
      ),
    'verify',
  ).action(
    action(async (opts: VerifyCliOptions) => {
      const { verifyCommand } = await import('../../commands/verify.js');
      process.exitCode = await verifyCommand({
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
        cluster: opts.cluster,
        backup: opts.backup,
        wal: Boolean(opts.wal),
        sinceLast: Boolean(opts.sinceLast),
        jobs: opts.jobs,
        progress: opts.progress,
        json: Boolean(opts.json),
      });
    }),
  );
}
