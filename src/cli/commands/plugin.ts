/** `pgark plugin serve`: the CNPG-I plugin (gRPC on a Unix socket) for CloudNativePG's instance manager. */
import type { Command } from 'commander';
import { flagValue, setting } from '../../util/options.js';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface PluginServeCliOptions extends ConfigOptions {
  role?: string;
  pghost?: string;
  pgport?: string;
  pguser?: string;
  pgdata?: string;
  name: string;
  socketDir?: string;
  listen: string;
  serverCert?: string;
  serverKey?: string;
  clientCa?: string;
}

export function register(program: Command): void {
  const plugin = program.command('plugin').description('the CNPG-I plugin for CloudNativePG (docs/cnpg-plugin.md)');
  withOptions(
    plugin.command('serve').description('serve the CNPG-I services of a role on the Unix socket DIR/NAME (operator: on TCP with mutual TLS) until SIGTERM'),
    'plugin serve',
  ).action(
    action(async (opts: PluginServeCliOptions) => {
      const { pluginServe, operatorServe } = await import('../../commands/plugin.js');
      if (opts.role === 'operator') {
        await operatorServe({ name: opts.name, listen: opts.listen, serverCert: opts.serverCert, serverKey: opts.serverKey, clientCa: opts.clientCa });
        return;
      }
      await pluginServe({
        role: opts.role ?? '',
        name: opts.name,
        socketDir: opts.socketDir ?? setting('socketDir') ?? '/plugins',
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
        pg: { pghost: opts.pghost, pgport: opts.pgport === undefined ? undefined : String(flagValue('pgport', opts.pgport)), pguser: opts.pguser, pgdata: opts.pgdata },
      });
    }),
  );
  withOptions(
    plugin.command('certs').description("write (or --apply) the TLS Secrets of the operator plugin's mutual TLS: a CA, a server and a client certificate"),
    'plugin certs',
  ).action(
    action(async (opts: { namespace?: string; service: string; outputDir?: string; apply?: boolean }) => {
      const { pluginCerts } = await import('../../commands/plugin-certs.js');
      await pluginCerts(opts);
    }),
  );
  withOptions(plugin.command('probe').description("exit 0 once the plugin's Unix socket DIR/NAME accepts connections (the sidecar's startup probe)"), 'plugin probe').action(
    action(async (opts: { name: string; socketDir?: string }) => {
      const { pluginProbe } = await import('../../commands/plugin-probe.js');
      await pluginProbe({ name: opts.name, socketDir: opts.socketDir ?? setting('socketDir') ?? '/plugins' });
    }),
  );
}
