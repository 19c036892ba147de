/** `pgark plugin serve`: the CNPG-I plugin (gRPC on a Unix socket) for CloudNativePG's instance manager. */
import type { Command } from 'commander';
import { setting } from '../../util/options.js';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface PluginServeCliOptions extends ConfigOptions {
  role?: string;
  name: string;
  socketDir?: string;
}

export function register(program: Command): void {
  const plugin = program.command('plugin').description('the CNPG-I plugin for CloudNativePG (docs/cnpg-plugin.md)');
  withOptions(
    plugin.command('serve').description('serve the CNPG-I services of a role on the Unix socket DIR/NAME until SIGTERM'),
    'plugin serve',
  ).action(
    action(async (opts: PluginServeCliOptions) => {
      const { pluginServe } = await import('../../commands/plugin.js');
      await pluginServe({
        role: opts.role ?? '',
        name: opts.name,
        socketDir: opts.socketDir ?? setting('socketDir') ?? '/plugins',
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
      });
    }),
  );
}
