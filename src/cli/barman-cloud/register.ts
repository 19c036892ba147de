/**
 * `pgark barman-cloud ...` in the full CLI: `install DIR`, and the nine drop-ins by name (which
 * src/cli/main.ts hands to ./main.ts before commander sees their argv, since barman's grammar is
 * not commander's; they are listed here for --help).
 */
import type { Command } from 'commander';
import { action } from '../common.js';
import { withOptions } from '../options.js';
import { BARMAN_COMMANDS } from './specs.js';

export function register(program: Command): void {
  const group = program
    .command('barman-cloud')
    .description(`run as barman-cloud (${BARMAN_COMMANDS.map((c) => c.slice('barman-cloud-'.length)).join(', ')}): pgark barman-cloud barman-cloud-wal-archive ARGS...`);
  withOptions(
    group
      .command('install')
      .description("link the nine barman-cloud-* drop-ins into DIR (idempotent; other files there are replaced only with --force)")
      .argument('<dir>', 'directory to link them into, e.g. /usr/local/bin'),
    'barman-cloud install',
  ).action(
    action(async (dir: string, opts: { force?: boolean }) => {
      const { installCommand } = await import('../../commands/barman-cloud/install.js');
      installCommand(dir, BARMAN_COMMANDS, Boolean(opts.force));
    }),
  );
}
