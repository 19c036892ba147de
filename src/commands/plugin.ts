/**
 * `pgark plugin serve`: runs the CNPG-I plugin until SIGTERM or SIGINT, then stops accepting
 * calls, lets those in flight finish (an Archive answered is a segment stored), removes the
 * socket and returns, so the process exits 0.
 */
import type { PluginServeOptions } from '../plugin/serve.js';

export async function pluginServe(opts: PluginServeOptions): Promise<void> {
  const { startPlugin } = await import('../plugin/serve.js');
  const { logger } = await import('../util/log.js');
  const plugin = await startPlugin(opts);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      logger().info({ signal }, 'CNPG-I plugin stopping: draining calls in flight');
      void plugin.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  logger().info('CNPG-I plugin stopped');
}
