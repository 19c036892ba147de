/**
 * `pgark plugin probe`: the sidecar's startup probe. Succeeds once something accepts connections
 * on the plugin socket DIR/NAME, which the server only binds when its services are registered.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { PgarkError } from '../util/errors.js';

export async function pluginProbe(opts: { socketDir: string; name: string }): Promise<void> {
  const path = join(opts.socketDir, opts.name);
  await new Promise<void>((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', (err: NodeJS.ErrnoException) => reject(new PgarkError(`plugin socket ${path} does not accept connections (${err.code ?? err.message})`)));
  });
}
