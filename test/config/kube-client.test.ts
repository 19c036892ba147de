/**
 * pgark's own Kubernetes client (src/config/kube-client.ts, used through src/config/kube.ts):
 * token rotation, exec credential plugins, kubeconfig mistakes, how API failures become errors, and
 * the exact body of a status write. No API server can run here, so test/harness/kube-api.ts plays
 * the API server's documented contract (paths, bearer tokens, Status objects, resourceVersion).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubePermissionError, kubeObjectStores, kubeSecretReader } from '../../src/config/kube.js';
import { operatorKube } from '../../src/plugin/operator/kube.js';
import { PgarkError, UserError } from '../../src/util/errors.js';
import { objectStore, operatorKubeconfig, pluginRole, secret, startKubeApi, type KubeApi } from '../harness/kube-api.js';
import { scratchDir } from '../harness/tmp.js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { execFile } from 'node:child_process';
import { PGARK_LAUNCHER } from '../wal/helpers.js';

const NS = 'prod';
const SECRET_VALUE = 'never-print-this-value';

async function withApi(fn: (api: KubeApi, dir: string) => Promise<void>): Promise<void> {
  const api = await startKubeApi();
  const tmp = scratchDir('kube-client');
  try {
    api.put(objectStore('store-a', { destinationPath: 's3://backups/' }, { retentionPolicy: '30d' }, NS));
    api.put(secret('creds', { KEY: SECRET_VALUE }, NS));
    await fn(api, tmp.path);
  } finally {
    await api.close();
    tmp.cleanup();
  }
}

const failure = (p: Promise<unknown>) => p.then(() => assert.fail('resolved'), (e: unknown) => e as Error);

test('in cluster, the service-account token is read afresh for every request, so a rotated token is used at once', async () => {
  await withApi(async (api) => {
    api.grant('token-1', pluginRole(['store-a'], ['creds']));
    const sa = api.serviceAccount('token-1', NS);
    const stores = kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir, cacheTtlMs: 0 });
    assert.ok(await stores.read('store-a', NS));
    // The kubelet swaps the file for a new one and the old token stops being accepted.
    api.grant('token-2', pluginRole(['store-a'], ['creds']));
    api.revoke('token-1');
    writeFileSync(join(sa.dir, 'token.next'), 'token-2');
    renameSync(join(sa.dir, 'token.next'), join(sa.dir, 'token'));
    assert.ok(await stores.read('store-a', NS), 'the same client, after rotation');
    assert.deepEqual(
      api.requests.map((r) => `${r.authorization} ${r.status}`),
      ['Bearer token-1 200', 'Bearer token-2 200'],
    );
  });
});

test('kubeconfig exec plugin: run once while its token is valid, run again after a 401, its output never in an error', async () => {
  await withApi(async (api, dir) => {
    writeFileSync(join(dir, 'ca.crt'), api.caPem);
    const plugin = join(dir, 'get-token');
    writeFileSync(
      plugin,
      `#!/bin/sh
n=$(cat "$STATE/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$STATE/count"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$STATE/exec-info"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-%s","expirationTimestamp":"2999-01-01T00:00:00Z"}}' $n
`,
    );
    chmodSync(plugin, 0o755);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        // A relative CA file is relative to the kubeconfig, as kubectl reads it.
        clusters: [{ name: 'c', cluster: { server: api.url, 'certificate-authority': 'ca.crt' } }],
        users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, env: [{ name: 'STATE', value: dir }] } } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: NS } }],
        'current-context': 'x',
      }),
    );
    api.grant('exec-token-1', pluginRole([], ['creds']));
    const reader = kubeSecretReader({ env: { KUBECONFIG: kubeconfig } });
    assert.equal((await reader.read('creds'))?.values.KEY.toString(), SECRET_VALUE, 'the context namespace');
    assert.ok(await reader.read('creds'));
    assert.equal(readFileSync(join(dir, 'count'), 'utf8').trim(), '1', 'the token is kept until its expirationTimestamp');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'exec-info'), 'utf8')), { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } });

    api.revoke('exec-token-1');
    api.grant('exec-token-2', pluginRole([], ['creds']));
    assert.ok(await reader.read('creds'));
    assert.equal(readFileSync(join(dir, 'count'), 'utf8').trim(), '2');
    assert.deepEqual(
      api.requests.map((r) => `${r.authorization} ${r.status}`),
      ['Bearer exec-token-1 200', 'Bearer exec-token-1 200', 'Bearer exec-token-1 401', 'Bearer exec-token-2 200'],
    );

    // A plugin that fails: its stderr is reported, its stdout (which may hold a token) is not.
    writeFileSync(plugin, `#!/bin/sh\necho '{"status":{"token":"half-written-token"}}'\necho 'login expired, run sso login' >&2\nexit 1\n`);
    const fresh = kubeSecretReader({ env: { KUBECONFIG: kubeconfig } });
    const err = await failure(fresh.read('creds'));
    assert.ok(err instanceof PgarkError);
    assert.match(err.message, /exec credential plugin .*get-token failed: login expired, run sso login/);
    assert.doesNotMatch(err.message, /half-written-token/);
  });
});

test('API failures: 404 is "missing", 403 and 401 permission errors with a hint, any other status by code and reason only', async () => {
  await withApi(async (api) => {
    api.grant('sa', pluginRole(['store-a'], ['creds', 'gone']), `system:serviceaccount:${NS}:pg`);
    const sa = api.serviceAccount('sa', NS);
    const kube = { env: sa.env, serviceAccountDir: sa.dir };
    const secrets = kubeSecretReader(kube);
    assert.equal(await secrets.read('gone', NS), undefined);

    const forbidden = await failure(secrets.read('other', NS));
    assert.ok(forbidden instanceof KubePermissionError);
    assert.equal(forbidden.httpStatus, 403);
    assert.equal(forbidden.message, `the pod's service account may not read secrets/other in ${NS}`);
    assert.match(forbidden.hint ?? '', /operator plugin's Role grants it/);

    // An API server failure whose Status message quotes the object: only the code and reason are kept.
    api.failNext(500, 'InternalError', `etcd: the object {"KEY":"${SECRET_VALUE}"} could not be decoded`);
    const internal = await failure(secrets.read('creds', NS));
    assert.ok(internal instanceof PgarkError && !(internal instanceof UserError));
    assert.equal(internal.message, `Kubernetes API: reading secrets/creds in ${NS} failed with HTTP 500 (InternalError)`);
    assert.equal(api.requests.at(-1)?.status, 500);

    api.failNext(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
    const stores = kubeObjectStores({ ...kube, cacheTtlMs: 0 });
    await assert.rejects(stores.updateStatus('store-a', NS, (s) => s), { message: `Kubernetes API: reading objectstores/store-a in ${NS} failed with HTTP 503 (ServiceUnavailable)` });

    rmSync(join(sa.dir, 'token'));
    api.revoke('sa');
    const unauthorized = await failure(kubeSecretReader({ env: sa.env, serviceAccountDir: sa.dir }).read('creds', NS));
    assert.ok(!(unauthorized instanceof KubePermissionError), 'a token file that is gone is not an HTTP answer');
    assert.match(unauthorized.message, /token.*ENOENT|ENOENT.*token/);
    writeFileSync(join(sa.dir, 'token'), 'sa');
    const rejected = await failure(kubeSecretReader({ env: sa.env, serviceAccountDir: sa.dir }).read('creds', NS));
    assert.ok(rejected instanceof KubePermissionError);
    assert.equal(rejected.httpStatus, 401);
    assert.equal(rejected.message, `the Kubernetes API rejected the pod's credentials (HTTP 401) to read secrets/creds in ${NS}`);

    // The operator's RBAC writes name the request, with the code and reason.
    const operator = operatorKube({ KUBECONFIG: operatorKubeconfig(api) });
    const binding = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'pg-pgark' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pg-pgark' }, subjects: [] };
    await operator.roleBindings.create('app', binding);
    await assert.rejects(operator.roleBindings.create('app', binding), { message: 'Kubernetes API: creating rolebindings/pg-pgark in app failed with HTTP 409 AlreadyExists' });
    const current = (await operator.roleBindings.read('app', 'pg-pgark'))!;
    await assert.rejects(operator.roleBindings.replace('app', 'pg-pgark', { ...current, roleRef: { ...binding.roleRef, name: 'edit' } }), {
      message: 'Kubernetes API: updating rolebindings/pg-pgark in app failed with HTTP 422 Invalid',
    });
    await operator.roleBindings.delete('app', 'pg-pgark');
    await operator.roleBindings.delete('app', 'pg-pgark');
    assert.equal(await operator.roleBindings.read('app', 'pg-pgark'), undefined);
    assert.deepEqual(api.requests.slice(-3).map((r) => `${r.method} ${r.status}`), ['DELETE 200', 'DELETE 404', 'GET 404']);

    for (const r of api.requests) assert.ok(!r.body.includes(SECRET_VALUE), 'no request carries a Secret value');
  });
});

test('the status write is a PUT of the object as read, with its resourceVersion, only .status changed', async () => {
  await withApi(async (api) => {
    api.grant('sa', pluginRole(['store-a'], []));
    const sa = api.serviceAccount('sa', NS);
    const read = api.get('ObjectStore', NS, 'store-a')!;
    await kubeObjectStores({ env: sa.env, serviceAccountDir: sa.dir }).updateStatus('store-a', NS, (status) => ({ ...status, serverRecoveryWindow: { pg: { lastSuccessfulBackupTime: '2026-12-05T10:00:00Z' } } }));
    const write = api.requests.find((r) => r.method === 'PUT')!;
    assert.equal(write.path, `/apis/barmancloud.cnpg.io/v1/namespaces/${NS}/objectstores/store-a/status`);
    assert.equal(write.contentType, 'application/json');
    assert.deepEqual(JSON.parse(write.body), { ...read, status: { serverRecoveryWindow: { pg: { lastSuccessfulBackupTime: '2026-12-05T10:00:00Z' } } } });
    assert.equal(JSON.parse(write.body).metadata.resourceVersion, read.metadata.resourceVersion, 'optimistic concurrency: a concurrent change makes it 409');
    assert.deepEqual(api.get('ObjectStore', NS, 'store-a')!.spec, read.spec);
  });
});

test('kubeconfig and service-account mistakes are UserErrors naming the file and field', async () => {
  await withApi(async (api, dir) => {
    const write = (name: string, config: object) => {
      const file = join(dir, name);
      writeFileSync(file, stringify(config));
      return file;
    };
    const base = { apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: api.url } }], users: [{ name: 'u', user: { token: 't' } }] };
    const noContext = write('no-context', { ...base, contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'nope' });
    const e1 = await failure(kubeSecretReader({ env: { KUBECONFIG: noContext } }).read('creds'));
    assert.ok(e1 instanceof UserError);
    assert.equal(e1.message, `kubeconfig ${noContext}: current-context: no context named "nope" in contexts`);

    const provider = write('provider', { ...base, users: [{ name: 'u', user: { 'auth-provider': { name: 'oidc' } } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' });
    const e2 = await failure(kubeSecretReader({ env: { KUBECONFIG: provider } }).read('creds'));
    assert.ok(e2 instanceof UserError);
    assert.match(e2.message, /users\[u\]\.user\.auth-provider: "oidc" is not supported by pgark; use an exec credential plugin/);

    const missing = join(dir, 'absent');
    await assert.rejects(kubeSecretReader({ env: { KUBECONFIG: missing } }).read('creds'), (e: unknown) => e instanceof UserError && e.message.startsWith(`cannot read kubeconfig ${missing}`));

    const sa = api.serviceAccount('sa', NS);
    rmSync(join(sa.dir, 'ca.crt'));
    await assert.rejects(kubeSecretReader({ env: sa.env, serviceAccountDir: sa.dir }).read('creds'), (e: unknown) => e instanceof UserError && /cannot read the service-account CA .*ca\.crt: ENOENT/.test(e.message));
    assert.equal(api.requests.length, 0, 'nothing was sent');
  });
});

test('pgark plugin certs --apply creates the two TLS Secrets through the API, and refuses to overwrite them', async () => {
  await withApi(async (api) => {
    api.grant('installer', [{ resource: 'secrets', verbs: ['create'] }]);
    const env = { ...process.env, KUBECONFIG: api.kubeconfig('installer', NS) };
    // Asynchronous: the fake API answers from this process's event loop.
    const apply = () =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
        execFile(PGARK_LAUNCHER, ['plugin', 'certs', '--namespace', NS, '--service', 'pgark', '--apply'], { encoding: 'utf8', env }, (err, stdout, stderr) =>
          resolve({ status: err ? Number(err.code) : 0, stdout, stderr }),
        ),
      );
    const first = await apply();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /created Secret prod\/pgark-server-tls\ncreated Secret prod\/pgark-client-tls/);
    assert.doesNotMatch(first.stdout + first.stderr, /PRIVATE KEY/);
    for (const name of ['pgark-server-tls', 'pgark-client-tls']) {
      const stored = api.get('Secret', NS, name);
      assert.equal(stored?.type, 'kubernetes.io/tls', name);
      assert.ok(Object.keys((stored?.data ?? {}) as object).includes('tls.key'), name);
    }
    const again = await apply();
    assert.equal(again.status, 2, again.stderr);
    assert.match(again.stderr, /Secret prod\/pgark-server-tls already exists/);
  });
});

test('no pgark code loads @kubernetes/client-node (48 MiB) at run time', () => {
  // tsc erases type-only imports, so an import left in the compiled code is a load at run time.
  const dist = join(PACKAGE_ROOT, 'dist', 'src');
  const loads = /(?:\bfrom|\bimport\s*\()\s*['"]@kubernetes\/client-node/;
  const loaders = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && loads.test(readFileSync(join(dist, f), 'utf8')));
  assert.deepEqual(loaders, []);
});
