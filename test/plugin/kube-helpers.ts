/** Shared by the plugin's Kubernetes tests: an S3 ObjectStore + its Secret in the local API server, resolved the way the sidecar resolves it. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { resolveObjectStore } from '../../src/config/index.js';
import { ChainedSecretResolver } from '../../src/config/secrets.js';
import type { BarmanObjectStoreConfiguration, ResolvedObjectStore } from '../../src/config/types.js';
import type { KubeApi } from '../harness/kube-api.js';
import type { TestStore } from '../harness/stores.js';

/** Puts an ObjectStore named `name` whose configuration is `store`'s, and the Secret it refers to. */
export function putObjectStore(api: KubeApi, ts: TestStore, name: string, namespace: string, spec: Record<string, unknown> = {}): void {
  // ObjectStore.spec.configuration forbids serverName: the Cluster's plugin parameters carry it.
  const configuration = ts.objectStoreConfig();
  api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: ts.secretName, namespace }, type: 'Opaque', data: base64Values(ts.secretValues) });
  api.put({ apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name, namespace }, spec: { configuration, ...spec } });
}

function base64Values(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

/** An ObjectStore's spec.configuration with its Secrets read through the API (no -f Secret, no --secrets-dir). */
export function apiResolver(env: NodeJS.ProcessEnv, serviceAccountDir: string) {
  return async (objectStore: unknown, serverName: string, namespace: string): Promise<ResolvedObjectStore> => {
    const secrets = new ChainedSecretResolver({ manifests: [], env, serviceAccountDir });
    const configuration = (objectStore as { spec: { configuration: BarmanObjectStoreConfiguration } }).spec.configuration;
    return resolveObjectStore({ manifests: { clusters: [], backups: [], scheduledBackups: [], secrets: [] }, secrets }, configuration, serverName, namespace);
  };
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
