/**
 * What Identity.Probe answers, kept current in the background so that Probe itself never touches
 * a store. CNPG calls Probe before handing out every pooled plugin connection (its plugin
 * repository pings each connection it acquires) and treats only an RPC error as a broken plugin;
 * it does not wait for `ready`. So Probe must answer at once and never fail, and `ready` is
 * information: whether the store of this plugin's Cluster answered with its credentials at the
 * last check (at start, then every READINESS_INTERVAL_SECONDS). The Cluster is the -f one, or in
 * a pod the one named by CLUSTER_NAME/NAMESPACE read through the API; with neither, no request
 * has said which store to use yet, and a call reaching a store makes the plugin ready.
 */
import { kubeClusterReader, type KubeOptions } from '../config/kube.js';
import type { ManifestSet } from '../config/types.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';
import { recoveryStoreRef, targetStoreRef } from '../config/plugin-form.js';
import { readCluster } from './config.js';
import type { PluginContext } from './context.js';
import { repeatUntilStopped, type Periodic } from './periodic.js';

export const READINESS_INTERVAL_SECONDS = 30;

type ClusterSource = () => Promise<unknown>;

/** Where this plugin's Cluster is read from, if it can know it before any request. */
function clusterSource(manifests: ManifestSet, kube: KubeOptions | undefined): ClusterSource | undefined {
  if (manifests.clusters.length === 1) return async () => manifests.clusters[0];
  const env = kube?.env ?? process.env;
  const name = setting('pluginClusterName', env);
  const namespace = setting('pluginNamespace', env);
  if (!kube || !name || !namespace) return undefined;
  const read = kubeClusterReader(kube);
  return async () => {
    const cluster = await read(name, namespace);
    if (!cluster) throw new UserError(`Cluster ${namespace}/${name} (CLUSTER_NAME, NAMESPACE) not found`);
    return cluster;
  };
}

/** Lists one entry of the Cluster's server folder with its credentials; a failure is logged with pgark's text (never a secret value). */
async function storeAnswers(ctx: PluginContext, source: ClusterSource): Promise<boolean> {
  try {
    const cluster = readCluster((await source()) as object);
    const ref = ctx.role === 'restore' ? recoveryStoreRef(cluster, ctx.name) : targetStoreRef(cluster, ctx.name);
    await ctx.withTarget(ref, async (t) => {
      for await (const entry of t.store.list(`${t.serverName}/`)) {
        void entry;
        break;
      }
    });
    return true;
  } catch (err) {
    logger().warn({ err: (err as Error).message }, 'plugin not ready: the object store cannot be reached with the configured credentials');
    return false;
  }
}

/** Starts the background check when the Cluster is known; undefined when readiness must come from calls. */
export function startReadinessCheck(ctx: PluginContext, manifests: ManifestSet, kube: KubeOptions | undefined): Periodic | undefined {
  const source = clusterSource(manifests, kube);
  if (!source) return undefined;
  return repeatUntilStopped(async () => {
    ctx.noteStoreCheck(await storeAnswers(ctx, source));
    return READINESS_INTERVAL_SECONDS;
  });
}
