/**
 * Probe in a pod, as CNPG uses it (it calls Probe before handing out each pooled connection and
 * only an RPC error counts; it never waits for `ready`): without -f manifests and before any
 * call, the sidecar reads its Cluster (CLUSTER_NAME, NAMESPACE) through the API, checks that
 * Cluster's store in the background and reports ready; a store that cannot be reached makes it
 * not ready, and Probe still answers at once. No Kubernetes API server runs here:
 * test/harness/kube-api.ts plays its documented contract, the store is a real s3rver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cnpgClient, IDENTITY } from '../harness/cnpg-client.js';
import { pluginRole, startKubeApi, type KubeApi } from '../harness/kube-api.js';
import { freePort } from '../harness/ports.js';
import { startStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { until } from './helpers.js';
import { putObjectStore, startPodSidecar } from './kube-helpers.js';

const NS = 'prod';
const TOKEN = 'sa-token-ready';
const PLUGIN = 'pgark.io';

/** Runs `fn` against a sidecar in a pod; resolves with its readiness after close(), which waits for the check under way. */
async function probeInPod(api: KubeApi, objectName: string, fn: (probe: () => Promise<boolean>) => Promise<void>): Promise<boolean> {
  const dir = scratchDir('plugin-readiness');
  const { plugin } = await startPodSidecar(api, { token: TOKEN, namespace: NS, pluginName: PLUGIN, objectName, currentPrimary: 'pg-2', socketDir: join(dir.path, 'sock') });
  const client = cnpgClient(plugin.server.socketPath);
  try {
    await fn(async () => (await client.call(IDENTITY, 'Probe')).ready as boolean);
  } finally {
    client.close();
    await plugin.close();
    dir.cleanup();
  }
  return plugin.context.ready;
}

test('in a pod, before any call: ready once the Cluster read through the API names a store that answers', async () => {
  const api = await startKubeApi();
  const ts = await startStore('s3');
  try {
    api.grant(TOKEN, pluginRole(['store-a'], [ts.secretName], ['pg']), `system:serviceaccount:${NS}:pg`);
    putObjectStore(api, ts, 'store-a', NS);
    const ready = await probeInPod(api, 'store-a', async (probe) => {
      await until('Probe ready without a call', probe);
    });
    assert.equal(ready, true);
  } finally {
    await ts.stop();
    await api.close();
  }
});

test('in a pod, the store unreachable: not ready, and Probe answers at once without an error', async () => {
  const api = await startKubeApi();
  const ts = await startStore('s3');
  const saved = process.env.PGARK_STORAGE_MAX_ATTEMPTS;
  process.env.PGARK_STORAGE_MAX_ATTEMPTS = '1';
  try {
    api.grant(TOKEN, pluginRole(['store-down'], [ts.secretName], ['pg']), `system:serviceaccount:${NS}:pg`);
    putObjectStore(api, ts, 'store-down', NS);
    const os = api.get('ObjectStore', NS, 'store-down')!;
    const spec = os.spec as { configuration: Record<string, unknown> };
    api.put({ ...os, spec: { ...spec, configuration: { ...spec.configuration, endpointURL: `http://127.0.0.1:${await freePort()}` } } });
    const ready = await probeInPod(api, 'store-down', async (probe) => {
      for (let i = 0; i < 5; i++) assert.equal(await probe(), false);
    });
    // close() waited for the first check: it read the Cluster's ObjectStore, then the store failed it.
    assert.equal(ready, false);
    assert.ok(api.requests.some((r) => r.method === 'GET' && r.path.endsWith(`/namespaces/${NS}/objectstores/store-down`) && r.status === 200), 'the check resolved the store');
  } finally {
    if (saved === undefined) delete process.env.PGARK_STORAGE_MAX_ATTEMPTS;
    else process.env.PGARK_STORAGE_MAX_ATTEMPTS = saved;
    await ts.stop();
    await api.close();
  }
});
