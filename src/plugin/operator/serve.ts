/**
 * `pgark plugin serve --role operator`: the operator-side plugin in its own Deployment, serving
 * its services over TCP with mutual TLS (CNPG finds it through a Service, cnpg-i-plugin.md §1.4).
 */
import { ChainedSecretResolver } from '../../config/secrets.js';
import { kubeObjectStores } from '../../config/kube.js';
import { UserError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import { setting } from '../../util/options.js';
import { PluginConfig } from '../config.js';
import { PluginServer } from '../server.js';
import { operatorKube } from './kube.js';
import { operatorServices } from './services.js';
import { listenAddress, mtlsCredentials, type MtlsFiles } from './tls.js';
import { emptyManifestSet } from '../../config/index.js';

export interface OperatorServeOptions extends Partial<MtlsFiles> {
  name: string;
  listen: string;
  env?: NodeJS.ProcessEnv;
}

export async function startOperatorPlugin(opts: OperatorServeOptions): Promise<{ server: PluginServer; close(): Promise<void> }> {
  const env = opts.env ?? process.env;
  const missing = (['serverCert', 'serverKey', 'clientCa'] as const).filter((k) => !opts[k]);
  if (missing.length) {
    throw new UserError(
      `--role operator needs ${missing.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
      'the operator plugin only serves mutual TLS; `pgark plugin certs` makes the certificates',
    );
  }
  const image = setting('sidecarImage', env);
  if (!image) throw new UserError('PGARK_SIDECAR_IMAGE is not set', 'the operator Deployment sets it to the pgark image the sidecars run');
  const secrets = new ChainedSecretResolver({ manifests: [], env });
  const stores = new PluginConfig(kubeObjectStores({ env, cacheTtlMs: 0 }), { manifests: emptyManifestSet(), secrets });
  const server = new PluginServer({
    socketDir: '',
    name: opts.name,
    tcp: { address: listenAddress(opts.listen), credentials: mtlsCredentials(opts as MtlsFiles) },
  });
  for (const service of operatorServices({ name: opts.name, image, kube: operatorKube(env), stores })) server.register(service);
  await server.listen();
  logger().info({ role: 'operator', name: opts.name }, 'CNPG-I plugin ready for calls');
  return { server, close: () => server.close() };
}
