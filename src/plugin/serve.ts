/**
 * `pgark plugin serve`: builds the plugin of one role (the services it registers and the
 * capabilities Identity advertises), listens on DIR/NAME, and closes cleanly. Each role's
 * service list is data (ROLE_SERVICES), so a new service is one factory added to its roles.
 */
import { emptyManifestSet, loadManifests } from '../config/index.js';
import { kubeClusterReader, kubeObjectStores, type KubeObjectStores } from '../config/kube.js';
import type { ManifestSet } from '../config/types.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import { ChainedSecretResolver } from '../config/secrets.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';
import { manifestObjectStoreSource, PluginConfig, type ObjectStoreSource } from './config.js';
import { PLUGIN_ROLES, PluginContext, type PluginRole } from './context.js';
import { identityService } from './identity.js';
import { startReadinessCheck } from './readiness.js';
import { startRetentionLoop, type RetentionLoop } from './retention-loop.js';
import { PluginServer, type PluginService } from './server.js';
import { memoryBudget, MemoryPlan } from '../config/memory.js';
import { walService } from './wal.js';
import { backupService, sidecarPgOptions } from './backup-service.js';
import { metricsService } from './metrics-service.js';
import { restoreJobService } from './restore-job.js';

/** Builds one service of a running plugin from its shared context. */
export type ServiceFactory = (ctx: PluginContext) => PluginService;

/** The services each role serves besides Identity (see ROLE_CAPABILITIES in identity.ts for what it advertises). */
export const ROLE_SERVICES: Record<PluginRole, ServiceFactory[]> = {
  instance: [walService, backupService, metricsService],
  restore: [walService, restoreJobService],
};

export interface PluginServeOptions {
  role: string;
  name: string;
  socketDir: string;
  /** -f manifests: a Cluster (for Probe), ObjectStores, Secrets. May be empty. */
  files: string[];
  secretsDir?: string;
  /** Where ObjectStores are read; default: the -f manifests. */
  objectStores?: ObjectStoreSource;
  env?: NodeJS.ProcessEnv;
  /** In a cluster: the service-account directory (default: the kubelet's mount). */
  serviceAccountDir?: string;
  /** --pghost/--pgport/--pguser/--pgdata; each unset one comes from the environment. */
  pg?: PgConnectionOptions;
}

export interface RunningPlugin {
  server: PluginServer;
  context: PluginContext;
  /** Stops accepting calls, lets those in flight finish, removes the socket, closes the stores. */
  close(): Promise<void>;
}

/** The same rule as CNPG-I's GetPluginMetadata name: DNS-style, at most 63 characters. */
const PLUGIN_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/;

export function checkRole(role: string): PluginRole {
  if ((PLUGIN_ROLES as readonly string[]).includes(role)) return role as PluginRole;
  // The operator role is started by commands/plugin.ts (plugin/operator/serve.ts): it has no socket and no stores.
  throw new UserError(`--role "${role}" is not a plugin role pgark serves`, `use --role ${[...PLUGIN_ROLES, 'operator'].join(', --role ')}`);
}

export async function startPlugin(opts: PluginServeOptions): Promise<RunningPlugin> {
  const role = checkRole(opts.role);
  if (!PLUGIN_NAME.test(opts.name)) {
    throw new UserError(`--name "${opts.name}" is not a plugin name`, 'a DNS-style name of at most 63 characters, letters, digits, "." and "-", e.g. pgark.io');
  }
  const manifests: ManifestSet =
    opts.files.length > 0 ? await loadManifests(opts.files) : emptyManifestSet();
  const env = opts.env ?? process.env;
  const kube = { env, serviceAccountDir: opts.serviceAccountDir };
  const ctx = { manifests, secrets: new ChainedSecretResolver({ manifests: manifests.secrets, secretsDir: opts.secretsDir, ...kube }) };
  // In a pod without -f ObjectStores, the sidecar reads them (and writes their status) through the API, as plugin-barman-cloud does.
  const api = !opts.objectStores && env.KUBERNETES_SERVICE_HOST && manifests.objectStores.length === 0 ? kubeObjectStores(kube) : undefined;
  const config = new PluginConfig(opts.objectStores ?? api ?? manifestObjectStoreSource(manifests), ctx);
  const memory = new MemoryPlan(memoryBudget(env));
  const context = new PluginContext(opts.name, role, config, manifests, sidecarPgOptions(env, opts.pg), memory, api);
  const retention = role === 'instance' && api ? startInstanceRetention(opts.name, config, api, kube) : undefined;
  const readiness = startReadinessCheck(context, manifests, api ? kube : undefined);
  const server = new PluginServer({ socketDir: opts.socketDir, name: opts.name });
  for (const make of [identityService, ...ROLE_SERVICES[role]]) server.register(make(context));
  await server.listen().catch(async (err: unknown) => {
    await Promise.all([retention?.stop(), readiness?.stop()]);
    throw err;
  });
  const collector = memory.startCollector('tracked');
  const plan = memory.summary();
  if (plan) logger().info(plan, 'sidecar memory budget');
  logger().info({ role, name: opts.name, retention: !!retention }, 'CNPG-I plugin ready for calls');
  return {
    server,
    context,
    async close() {
      // A retention cycle under way finishes first: its deletions are resumable, but its status write is not worth losing.
      await Promise.all([retention?.stop(), readiness?.stop()]);
      await server.close();
      await context.close();
      collector.stop();
    },
  };
}

/** The instance sidecar's retention loop; its Cluster, namespace and pod come from the environment CNPG gives the pod. */
function startInstanceRetention(pluginName: string, config: PluginConfig, objectStores: KubeObjectStores, kube: { env: NodeJS.ProcessEnv; serviceAccountDir?: string }): RetentionLoop {
  const namespace = setting('pluginNamespace', kube.env);
  const clusterName = setting('pluginClusterName', kube.env);
  const podName = setting('podName', kube.env);
  const missing = [['NAMESPACE', namespace], ['CLUSTER_NAME', clusterName], ['POD_NAME', podName]].filter(([, v]) => !v).map(([n]) => n);
  if (missing.length > 0) {
    throw new UserError(`plugin serve --role instance in a cluster needs ${missing.join(', ')} in its environment`, "CNPG sets them in the instance pod; the sidecar gets the postgres container's environment");
  }
  return startRetentionLoop({ pluginName, clusterName: clusterName!, namespace: namespace!, podName: podName!, readCluster: kubeClusterReader(kube), config, objectStores, log: logger() });
}
