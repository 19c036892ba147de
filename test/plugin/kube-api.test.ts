/**
 * The plugin's Kubernetes side: ObjectStore, Cluster and Secret reads and the ObjectStore status
 * write, through pgark's client (src/config/kube-client.ts) against test/harness/kube-api.ts. No
 * API server runs here, so that harness plays the documented contract (paths, Status objects,
 * bearer tokens, resourceVersion conflicts on the status subresource); clients reach it
 * in-cluster style, from KUBERNETES_SERVICE_HOST/PORT and a service-account directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { loadManifests } from '../../src/config/index.js';
import { manifestObjectStoreSource, PluginConfig } from '../../src/plugin/config.js';
import { statusCodeOf } from '../../src/plugin/calls.js';
import { UserError } from '../../src/util/errors.js';
import { scratchDir } from '../harness/tmp.js';
import { KubePermissionError, kubeClusterReader, kubeObjectStores, kubeSecretReader } from '../../src/config/kube.js';
import { ChainedSecretResolver } from '../../src/config/secrets.js';
import { withRecoveryWindow } from '../../src/plugin/recovery-window.js';
import { pluginRole, startKubeApi, type KubeApi } from '../harness/kube-api.js';
import { startStore } from '../harness/stores.js';
import { apiPluginConfig, putObjectStore } from './kube-helpers.js';

const NS = 'prod';
const TOKEN = 'sa-token-0123';

async function withApi(fn: (api: KubeApi, sa: { dir: string; env: Record<string, string> }) => Promise<void>): Promise<void> {
  const api = await startKubeApi();
  try {
    api.grant(TOKEN, pluginRole(['store-a'], ['pgark-store-credentials'], ['pg']), `system:serviceaccount:${NS}:pg`);
    await fn(api, api.serviceAccount(TOKEN, NS));
  } finally {
    await api.close();
  }
}

test('ObjectStore, Cluster and Secret are read through the API with the service account token', async () => {
  await withApi(async (api, sa) => {
    const ts = await startStore('s3');
    try {
      putObjectStore(api, ts, 'store-a', NS, { retentionPolicy: '30d' });
      api.put({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', metadata: { name: 'pg', namespace: NS }, spec: { instances: 1 }, status: { currentPrimary: 'pg-1' } });
      const opts = { env: sa.env, serviceAccountDir: sa.dir };

      const os = (await kubeObjectStores(opts).read('store-a', NS)) as { spec: { retentionPolicy: string; configuration: { destinationPath: string } } };
      assert.equal(os.spec.retentionPolicy, '30d');
      assert.equal(os.spec.configuration.destinationPath, ts.destinationPath);
      const cluster = await kubeClusterReader(opts)('pg', NS);
      assert.equal((cluster?.status as { currentPrimary: string }).currentPrimary, 'pg-1');
      const secret = await kubeSecretReader(opts).read('pgark-store-credentials', NS);
      assert.equal(secret?.values.ACCESS_KEY_ID.toString(), ts.secretValues.ACCESS_KEY_ID);
      assert.equal(await kubeSecretReader(opts).defaultNamespace(), NS, 'the namespace file of the service account');

      // The plugin's resolver, as the sidecar builds it: the ObjectStore and its Secret from the API only.
      const ref = { namespace: NS, objectName: 'store-a', serverName: 'pg', skipEmptyCheck: false };
      const resolved = await apiPluginConfig(sa).resolve(ref);
      assert.equal(resolved.s3?.secretAccessKey, ts.secretValues.ACCESS_SECRET_KEY);
      assert.equal(resolved.credentialSource, `s3Credentials: accessKeyId, secretAccessKey, region from Kubernetes secret ${NS}/pgark-store-credentials`);

      // The file path: the same ObjectStore and Secret as seed-style -f manifests resolve to the same store.
      const dir = scratchDir('objectstore-files');
      try {
        const objectStoreDoc = { ...api.get('ObjectStore', NS, 'store-a')!, metadata: { name: 'store-a', namespace: NS } };
        const secretDoc = { apiVersion: 'v1', kind: 'Secret', metadata: { name: ts.secretName, namespace: NS }, type: 'Opaque', stringData: ts.secretValues };
        const files = [join(dir.path, 'objectstore.yaml'), join(dir.path, 'secret.yaml')];
        writeFileSync(files[0], stringify(objectStoreDoc));
        writeFileSync(files[1], stringify(secretDoc));
        const manifests = await loadManifests(files);
        const fromFiles = await new PluginConfig(manifestObjectStoreSource(manifests), { manifests, secrets: new ChainedSecretResolver({ manifests: manifests.secrets, env: {} }) }).resolve(ref);
        const { credentialSource: _fileSource, ...fileFields } = fromFiles;
        const { credentialSource: _apiSource, ...apiFields } = resolved;
        assert.deepEqual(fileFields, apiFields);
        assert.match(fromFiles.credentialSource, /from Secret "pgark-store-credentials"|secret.yaml/);
      } finally {
        dir.cleanup();
      }

      assert.deepEqual(
        api.requests.map((r) => `${r.method} ${r.path} ${r.status}`).slice(0, 3),
        [
          `GET /apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/store-a 200`,
          `GET /apis/postgresql.cnpg.io/v1/namespaces/${NS}/clusters/pg 200`,
          `GET /api/v1/namespaces/${NS}/secrets/pgark-store-credentials 200`,
        ],
      );
      assert.ok(api.requests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'every request carries the mounted token');
    } finally {
      await ts.stop();
    }
  });
});

test('the ObjectStore is cached for its TTL, then read again (a rotated spec is seen)', async () => {
  await withApi(async (api, sa) => {
    api.put({ apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name: 'store-a', namespace: NS }, spec: { retentionPolicy: '30d' } });
    const cached = kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir, cacheTtlMs: 3_600_000 });
    const fresh = kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir, cacheTtlMs: 0 });
    const policy = async (s: ReturnType<typeof kubeObjectStores>) => ((await s.read('store-a', NS)) as { spec: { retentionPolicy: string } }).spec.retentionPolicy;
    assert.equal(await policy(cached), '30d');
    assert.equal(await policy(fresh), '30d');
    api.put({ apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name: 'store-a', namespace: NS }, spec: { retentionPolicy: '7d' } });
    assert.equal(await policy(cached), '30d', 'within the TTL the cached copy is used');
    assert.equal(await policy(fresh), '7d', 'after the TTL the API is asked again');
    assert.equal(api.requests.filter((r) => r.method === 'GET').length, 3);
  });
});

test('404: the ObjectStore is missing (name, namespace, hint); 403 and 401: a permission error naming the Role', async () => {
  await withApi(async (api, sa) => {
    const stores = kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir });
    assert.equal(await stores.read('store-a', NS), undefined);
    const missing = await apiPluginConfig(sa).objectStore('store-a', NS).then(() => assert.fail('read'), (e: unknown) => e);
    assert.ok(missing instanceof UserError, 'a configuration problem: FAILED_PRECONDITION in the plugin');
    assert.equal(missing.message, `ObjectStore ${NS}/store-a not found`);
    assert.match(missing.hint ?? '', /create the ObjectStore/);
    await assert.rejects(stores.updateStatus('store-a', NS, (s) => s), new RegExp(`ObjectStore ${NS}/store-a not found: its status cannot be written`));
    assert.equal(api.requests.at(-1)?.status, 404);

    // The Role names store-a only.
    api.put({ apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name: 'other', namespace: NS }, spec: {} });
    const forbidden = await stores.read('other', NS).then(() => assert.fail('read'), (e: unknown) => e);
    assert.ok(forbidden instanceof KubePermissionError);
    assert.equal(statusCodeOf(forbidden), status.FAILED_PRECONDITION);
    assert.equal(forbidden.httpStatus, 403);
    assert.equal(forbidden.message, `the pod's service account may not read objectstores/other in ${NS}`);
    assert.match(forbidden.hint ?? '', /operator plugin's Role grants it \(see docs/);

    // A Secret the Role does not name: a permission error, not "not found" (FAILED_PRECONDITION upstream).
    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'elsewhere', namespace: NS }, data: { K: Buffer.from('hidden-value').toString('base64') } });
    const resolver = new ChainedSecretResolver({ manifests: [], env: sa.env, serviceAccountDir: sa.dir });
    const secretErr = await resolver.get({ name: 'elsewhere', key: 'K' }, NS).then(() => assert.fail('read'), (e: unknown) => e);
    assert.ok(secretErr instanceof KubePermissionError);
    assert.equal(secretErr.message, `the pod's service account may not read secrets/elsewhere in ${NS}`);

    // A token the API does not know.
    const stranger = api.serviceAccount('not-a-token', NS);
    const unauthorized = await kubeObjectStores({ env: stranger.env, serviceAccountDir: stranger.dir }).read('store-a', NS).then(() => assert.fail('read'), (e: unknown) => e);
    assert.ok(unauthorized instanceof KubePermissionError);
    assert.equal(unauthorized.httpStatus, 401);
    assert.deepEqual(api.requests.slice(-3).map((r) => r.status), [403, 403, 401]);
  });
});

test('status write: merged with another server\'s entry, retried after a conflicting write, spec untouched', async () => {
  await withApi(async (api, sa) => {
    api.put({
      apiVersion: 'barmancloud.cnpg.io/v1',
      kind: 'ObjectStore',
      metadata: { name: 'store-a', namespace: NS },
      spec: { retentionPolicy: '30d' },
      status: { serverRecoveryWindow: { other: { firstRecoverabilityPoint: '2026-01-01T00:00:00Z' } } },
    });
    const stores = kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir });
    // Another writer (the sidecar of another cluster sharing the store) lands between our read and our write.
    api.beforeNextStatusWrite(() => {
      const o = api.get('ObjectStore', NS, 'store-a')!;
      (o.status as { serverRecoveryWindow: Record<string, unknown> }).serverRecoveryWindow.third = { lastSuccessfulBackupTime: '2026-02-02T00:00:00Z' };
      api.put(o);
    });
    const window = { firstRecoverabilityPoint: '2026-11-05T10:00:00Z', lastSuccessfulBackupTime: '2026-12-04T10:00:00Z' };
    await stores.updateStatus('store-a', NS, (status) => withRecoveryWindow(status, 'pg', window));
    const stored = api.get('ObjectStore', NS, 'store-a')!;
    assert.deepEqual(stored.status, {
      serverRecoveryWindow: {
        other: { firstRecoverabilityPoint: '2026-01-01T00:00:00Z' },
        third: { lastSuccessfulBackupTime: '2026-02-02T00:00:00Z' },
        pg: window,
      },
    });
    assert.deepEqual(stored.spec, { retentionPolicy: '30d' });
    const writes = api.requests.filter((r) => r.method === 'PUT');
    assert.deepEqual(writes.map((r) => `${r.path} ${r.status}`), [
      `/apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/store-a/status 409`,
      `/apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/store-a/status 200`,
    ]);
  });
});

test('the stand-in API server: merge and JSON patch on the status, 415 for strategic merge, 422 without resourceVersion, 409 when stale', async () => {
  await withApi(async (api) => {
    api.grant('patcher', [{ resource: 'objectstores/status', verbs: ['patch', 'update'] }, { resource: 'objectstores', verbs: ['get'] }]);
    const stored = api.put({ apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name: 's', namespace: NS }, spec: { retentionPolicy: '30d' } });
    const path = `/apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/s/status`;
    const call = (method: string, contentType: string, body: unknown) => rawRequest(api, method, path, contentType, body, 'patcher');

    const merged = await call('PATCH', 'application/merge-patch+json', { spec: { retentionPolicy: '1d' }, status: { serverRecoveryWindow: { a: { lastFailedBackupTime: '2026-12-01T00:00:00Z' } } } });
    assert.equal(merged.code, 200);
    assert.deepEqual(api.get('ObjectStore', NS, 's')!.spec, { retentionPolicy: '30d' }, 'the status subresource ignores spec');
    const patched = await call('PATCH', 'application/json-patch+json', [{ op: 'add', path: '/status/serverRecoveryWindow/b', value: { firstRecoverabilityPoint: '2026-12-02T00:00:00Z' } }]);
    assert.equal(patched.code, 200);
    assert.deepEqual(Object.keys((api.get('ObjectStore', NS, 's')!.status as { serverRecoveryWindow: object }).serverRecoveryWindow), ['a', 'b']);
    const strategic = await call('PATCH', 'application/strategic-merge-patch+json', { status: {} });
    assert.equal(strategic.code, 415);
    const noVersion = await call('PUT', 'application/json', { ...stored, metadata: { name: 's', namespace: NS } });
    assert.equal(noVersion.code, 422);
    assert.match(noVersion.body.message, /metadata\.resourceVersion: Invalid value/);
    const stale = await call('PUT', 'application/json', { ...stored, status: {} });
    assert.equal(stale.code, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.equal(stale.body.kind, 'Status');
    const missing = await rawRequest(api, 'GET', `/apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/nope`, undefined, undefined, 'patcher');
    assert.deepEqual(missing.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'objectstores.barmancloud.cnpg.io "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'barmancloud.cnpg.io', kind: 'objectstores' },
      code: 404,
    });
  });
});

function rawRequest(api: KubeApi, method: string, path: string, contentType: string | undefined, body: unknown, token: string): Promise<{ code: number; body: { message: string; reason: string; kind: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: api.host, port: api.port, method, path, ca: api.caPem, headers: { authorization: `Bearer ${token}`, ...(contentType ? { 'content-type': contentType } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
