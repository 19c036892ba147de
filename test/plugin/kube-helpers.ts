/** Shared by the plugin's Kubernetes tests: an S3 ObjectStore + its Secret in the local API server, resolved the way the sidecar resolves it. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { kubeObjectStores } from '../../src/config/kube.js';
import { ChainedSecretResolver } from '../../src/config/secrets.js';
import { PluginConfig } from '../../src/plugin/config.js';
import { objectStore, secret, type KubeApi } from '../harness/kube-api.js';
import type { TestStore } from '../harness/stores.js';
import { emptyManifestSet } from '../../src/config/index.js';
import type { PgConnectionOptions } from '../../src/pg/connect.js';
import { startPlugin, type RunningPlugin } from '../../src/plugin/serve.js';
import { pluginCluster } from '../harness/cnpg-client.js';

/** Puts an ObjectStore named `name` whose configuration is `store`'s, and the Secret it refers to. */
export function putObjectStore(api: KubeApi, ts: TestStore, name: string, namespace: string, spec: Record<string, unknown> = {}): void {
  // ObjectStore.spec.configuration forbids serverName: the Cluster's plugin parameters carry it.
  const configuration = ts.objectStoreConfig();
  api.put(secret(ts.secretName, ts.secretValues, namespace));
  api.put(objectStore(name, configuration, spec, namespace));
}

/** The plugin's configuration reader as the sidecar builds it in a pod: ObjectStores and Secrets through the API only. */
export function apiPluginConfig(sa: { dir: string; env: Record<string, string> }): PluginConfig {
  const kube = { env: sa.env, serviceAccountDir: sa.dir };
  const manifests = emptyManifestSet();
  return new PluginConfig(kubeObjectStores(kube), { manifests, secrets: new ChainedSecretResolver({ manifests: [], ...kube }) });
}

/** A debug-level logger whose every line is kept, to check what reaches the logs. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/**
 * `plugin serve --role instance` in this process as in pod pg-1 of Cluster "pg" (its Cluster put
 * in the API, naming ObjectStore `objectName`; the pod's environment and service account), with
 * no -f manifests. Returns the plugin and the Cluster as CNPG would send it.
 */
export async function startPodSidecar(
  api: KubeApi,
  o: { token: string; namespace: string; pluginName: string; objectName: string; currentPrimary: string; socketDir: string; pg?: PgConnectionOptions },
): Promise<{ plugin: RunningPlugin; cluster: object }> {
  const cluster = pluginCluster({ name: 'pg', namespace: o.namespace, pluginName: o.pluginName, barmanObjectName: o.objectName }) as { metadata: { name: string; namespace: string } };
  api.put({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', ...cluster, status: { currentPrimary: o.currentPrimary } });
  const sa = api.serviceAccount(o.token, o.namespace);
  const plugin = await startPlugin({
    role: 'instance',
    name: o.pluginName,
    socketDir: o.socketDir,
    files: [],
    env: { ...sa.env, NAMESPACE: o.namespace, CLUSTER_NAME: 'pg', POD_NAME: 'pg-1' },
    serviceAccountDir: sa.dir,
    pg: o.pg,
  });
  return { plugin, cluster };
}
