/**
 * wal-archive / wal-restore (archive_command and restore_command) and wal-list. bin/pgark.js
 * routes wal-archive and wal-restore straight to src/wal/client.ts without loading commander;
 * these definitions give them --help and the same behaviour when run through the full CLI.
 */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { WalFlags } from '../../commands/wal.js';

interface WalOptions extends ConfigOptions {
  cluster?: string;
  source?: string;
  pgdata?: string;
  daemon: boolean;
}

function walFlags(opts: WalOptions): WalFlags {
  return { file: opts.file, secretsDir: opts.secretsDir, cluster: opts.cluster, source: opts.source, pgdata: opts.pgdata, noDaemon: !opts.daemon };
}

export function register(program: Command): void {
  withOptions(
    program
      .command('wal-archive')
      .description("archive one WAL file: archive_command = 'pgark wal-archive -f cluster.yaml %p'")
      .argument('<wal-path>', 'the file PostgreSQL passes as %p'),
    'wal-archive',
  ).action(
    action(async (walPath: string, opts: WalOptions) => {
      const { walCommand } = await import('../../commands/wal.js');
      process.exitCode = await walCommand('wal-archive', walFlags(opts), [walPath]);
    }),
  );

  withOptions(
    program
      .command('wal-restore')
      .description("fetch one WAL file: restore_command = 'pgark wal-restore -f cluster.yaml %f %p'")
      .argument('<wal-name>', 'the WAL file name PostgreSQL passes as %f')
      .argument('<dest-path>', 'where to write it (%p)'),
    'wal-restore',
  ).action(
    action(async (walName: string, dest: string, opts: WalOptions) => {
      const { walCommand } = await import('../../commands/wal.js');
      process.exitCode = await walCommand('wal-restore', walFlags(opts), [walName, dest]);
    }),
  );

  withOptions(
    program.command('wal-list').description('timelines of the WAL archive: first and last segment, count, gaps, history files, size'),
    'wal-list',
  ).action(
    action(async (opts: WalOptions) => {
      const { walListCommand } = await import('../../commands/wal.js');
      await walListCommand({ files: configFiles(opts), secretsDir: opts.secretsDir, cluster: opts.cluster, source: opts.source }, Boolean(opts.json));
    }),
  );
}
