/**
 * wal-archive / wal-restore (archive_command and restore_command) and wal-list. bin/pgark.js
 * routes wal-archive and wal-restore straight to src/wal/client.ts without loading commander;
 * these definitions give them --help and the same behaviour when run through the full CLI.
 */
import type { Command } from 'commander';
import { action, configFiles, withConfigOptions, type ConfigOptions } from '../common.js';

interface WalOptions extends ConfigOptions {
  cluster?: string;
  source?: string;
  pgdata?: string;
  daemon: boolean;
}

function clientArgs(opts: WalOptions): string[] {
  const args = configFiles(opts).flatMap((f) => ['-f', f]);
  if (opts.secretsDir) args.push('--secrets-dir', opts.secretsDir);
  if (opts.cluster) args.push('--cluster', opts.cluster);
  if (opts.source) args.push('--source', opts.source);
  if (opts.pgdata) args.push('--pgdata', opts.pgdata);
  if (!opts.daemon) args.push('--no-daemon');
  return args;
}

export function register(program: Command): void {
  withConfigOptions(
    program
      .command('wal-archive')
      .description("archive one WAL file: archive_command = 'pgark wal-archive -f cluster.yaml %p'")
      .argument('<wal-path>', 'the file PostgreSQL passes as %p')
      .option('--cluster <name>', 'Cluster to use when the manifests hold several')
      .option('--pgdata <dir>', 'data directory (default: the parent of pg_wal in %p)')
      .option('--no-daemon', 'archive in this process instead of through the resident WAL daemon'),
  ).action(
    action(async (walPath: string, opts: WalOptions) => {
      const { walCommand } = await import('../../commands/wal.js');
      process.exitCode = await walCommand('wal-archive', [...clientArgs(opts), walPath]);
    }),
  );

  withConfigOptions(
    program
      .command('wal-restore')
      .description("fetch one WAL file: restore_command = 'pgark wal-restore -f cluster.yaml %f %p'")
      .argument('<wal-name>', 'the WAL file name PostgreSQL passes as %f')
      .argument('<dest-path>', 'where to write it (%p)')
      .option('--cluster <name>', 'Cluster to use when the manifests hold several')
      .option('--source <name>', "read from externalClusters[name].barmanObjectStore (recovery), serverName defaulting to name")
      .option('--pgdata <dir>', 'data directory (default: the parent of pg_wal in %p)')
      .option('--no-daemon', 'fetch in this process, without prefetching'),
  ).action(
    action(async (walName: string, dest: string, opts: WalOptions) => {
      const { walCommand } = await import('../../commands/wal.js');
      process.exitCode = await walCommand('wal-restore', [...clientArgs(opts), walName, dest]);
    }),
  );

  withConfigOptions(
    program
      .command('wal-list')
      .description('timelines of the WAL archive: first and last segment, count, gaps, history files, size')
      .option('--cluster <name>', 'Cluster to use when the manifests hold several')
      .option('--source <name>', 'list externalClusters[name].barmanObjectStore instead of the Cluster\'s own'),
  ).action(
    action(async (opts: WalOptions) => {
      const { walListCommand } = await import('../../commands/wal.js');
      await walListCommand({ files: configFiles(opts), secretsDir: opts.secretsDir, cluster: opts.cluster, source: opts.source }, Boolean(opts.json));
    }),
  );
}
