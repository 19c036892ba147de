/**
 * `pgark plugin serve --role operator` end to end: certificates from `pgark plugin certs`, the
 * real gRPC server on TCP with mutual TLS, and a client built from the upstream cnpg-i protos
 * playing the CNPG operator. Clients without a certificate, with one from another CA, or limited
 * to TLS 1.2 are refused; a proper client calls every operator service. The Kubernetes API is a
 * local server playing its documented contract (test/harness/kube-api.ts): no API server runs here.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { credentials, status } from '@grpc/grpc-js';
import { startOperatorPlugin } from '../../src/plugin/operator/serve.js';
import { generatePluginCerts, serviceDnsNames } from '../../src/commands/plugin-certs.js';
import { cnpgClient, IDENTITY, type CnpgClient } from '../harness/cnpg-client.js';
import { applyPatch } from '../harness/json-patch.js';
import { kubeShapeProblems } from '../harness/kube-shapes.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK_LAUNCHER } from '../wal/helpers.js';
import { objectStore, operatorKubeconfig, secret, startKubeApi } from '../harness/kube-api.js';

const OPERATOR = 'cnpgi.operator.v1.Operator';
const LIFECYCLE = 'cnpgi.operator_lifecycle.v1.OperatorLifecycle';
const RECONCILER = 'cnpgi.reconciler.v1.ReconcilerHooks';
const HOST = 'pgark.cnpg-system.svc';

const tmp = scratchDir('operator-mtls');
const api = await startKubeApi();
const kubeconfig = operatorKubeconfig(api);
api.put(objectStore(
    'minio-store',
    { destinationPath: 's3://backups/', s3Credentials: { accessKeyId: { name: 'minio-creds', key: 'ACCESS_KEY_ID' }, secretAccessKey: { name: 'minio-creds', key: 'ACCESS_SECRET_KEY' } } },
    { retentionPolicy: '30d', instanceSidecarConfiguration: { resources: { limits: { memory: '256Mi' }, requests: { memory: '100Mi' } } } },
  ),
);
api.put(secret('minio-creds', { ACCESS_KEY_ID: 'AKIA-SECRET-ID', ACCESS_SECRET_KEY: 'very-secret' }));

// The certificates come from the CLI, as a user would make them.
const certDir = join(tmp.path, 'certs');
const certsRun = spawnSync(PGARK_LAUNCHER, ['plugin', 'certs', '--namespace', 'cnpg-system', '--service', 'pgark', '-o', certDir], { encoding: 'utf8' });
const file = (name: string) => readFileSync(join(certDir, name));
const other = generatePluginCerts('pgark', 'cnpg-system');

const plugin = await startOperatorPlugin({
  name: 'pgark.io',
  listen: '127.0.0.1:0',
  serverCert: join(certDir, 'server.crt'),
  serverKey: join(certDir, 'server.key'),
  clientCa: join(certDir, 'ca.crt'),
  env: { KUBECONFIG: kubeconfig, PGARK_SIDECAR_IMAGE: 'ghcr.io/example/pgark:2.0.0' },
});
const address = `127.0.0.1:${plugin.server.port}`;
const options = { 'grpc.ssl_target_name_override': HOST, 'grpc.default_authority': HOST };
const clients: CnpgClient[] = [];
const client = (creds: ReturnType<typeof credentials.createSsl>) => {
  const c = cnpgClient({ address, credentials: creds, options });
  clients.push(c);
  return c;
};
const good = client(credentials.createSsl(file('ca.crt'), file('client.key'), file('client.crt')));
after(async () => {
  for (const c of clients) c.close();
  await plugin.close();
  await api.close();
  tmp.cleanup();
});

const fixture = (name: string) => JSON.parse(JSON.stringify(parse(readFileSync(`test/fixtures/cnpg-pods/${name}.yaml`, 'utf8'))));
const json = (o: unknown) => Buffer.from(JSON.stringify(o));

test('pgark plugin certs wrote a CA, a server certificate for the Service names and a client certificate', () => {
  assert.equal(certsRun.status, 0, certsRun.stderr);
  assert.match(certsRun.stdout, /cnpg\.io\/pluginServerSecret: pgark-server-tls, cnpg\.io\/pluginClientSecret: pgark-client-tls/);
  assert.doesNotMatch(certsRun.stdout, /PRIVATE KEY/);
  const verify = spawnSync('openssl', ['verify', '-CAfile', join(certDir, 'ca.crt'), join(certDir, 'server.crt'), join(certDir, 'client.crt')], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  const text = spawnSync('openssl', ['x509', '-in', join(certDir, 'server.crt'), '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], { encoding: 'utf8' }).stdout;
  for (const name of serviceDnsNames('pgark', 'cnpg-system')) assert.match(text, new RegExp(`DNS:${name.replace(/\./g, '\\.')}(,|\\s|$)`));
  assert.match(text, /TLS Web Server Authentication/);
  // Two kubernetes.io/tls Secrets, each with ca.crt, and no CA key anywhere.
  const docs = readFileSync(join(certDir, 'secrets.yaml'), 'utf8').split(/^---$/m).map((d) => parse(d));
  assert.deepEqual(docs.map((d) => [d.metadata.name, d.metadata.namespace, d.type, Object.keys(d.data).sort()]), [
    ['pgark-server-tls', 'cnpg-system', 'kubernetes.io/tls', ['ca.crt', 'tls.crt', 'tls.key']],
    ['pgark-client-tls', 'cnpg-system', 'kubernetes.io/tls', ['ca.crt', 'tls.crt', 'tls.key']],
  ]);
  assert.deepEqual(Buffer.from(docs[1].data['ca.crt'], 'base64'), file('ca.crt'));
  assert.equal(kubeShapeProblems(docs[0], 'V1Secret').length, 0);
});

async function refused(c: CnpgClient): Promise<void> {
  await assert.rejects(c.call(IDENTITY, 'GetPluginMetadata'), (err: { code: number }) => {
    assert.equal(err.code, status.UNAVAILABLE);
    return true;
  });
}

test('a client without a certificate is refused', async () => {
  await refused(client(credentials.createSsl(file('ca.crt'))));
});

test('a client whose certificate comes from another CA is refused', async () => {
  await refused(client(credentials.createSsl(file('ca.crt'), Buffer.from(other.client.key), Buffer.from(other.client.cert))));
});

function handshake(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: plugin.server.port!,
      servername: HOST,
      ca: file('ca.crt'),
      cert: file('client.crt'),
      key: file('client.key'),
      maxVersion,
      ALPNProtocols: ['h2'],
    });
    s.once('secureConnect', () => {
      resolve(`connected ${s.getProtocol()}`);
      s.destroy();
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
  });
}

test('a client limited to TLS 1.2 is refused, the same client on TLS 1.3 is accepted', async () => {
  assert.match(await handshake('TLSv1.2'), /^error ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION$/);
  assert.equal(await handshake('TLSv1.3'), 'connected TLSv1.3');
});

test('Identity: the operator capabilities', async () => {
  const meta = await good.call(IDENTITY, 'GetPluginMetadata');
  assert.equal(meta.name, 'pgark.io');
  const caps = await good.call(IDENTITY, 'GetPluginCapabilities');
  assert.deepEqual(caps.capabilities.map((c: { service: { type: string } }) => c.service.type), [
    'TYPE_OPERATOR_SERVICE',
    'TYPE_LIFECYCLE_SERVICE',
    'TYPE_RECONCILER_HOOKS',
    'TYPE_INSTANCE_SIDECAR_INJECTION',
  ]);
  assert.equal((await good.call(IDENTITY, 'Probe')).ready, true);
});

test('Operator: capabilities, a valid cluster passes, a broken one gets a field path', async () => {
  const caps = await good.call(OPERATOR, 'GetCapabilities');
  assert.deepEqual(caps.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type), ['TYPE_VALIDATE_CLUSTER_CREATE', 'TYPE_VALIDATE_CLUSTER_CHANGE']);
  const cluster = fixture('cluster-plugin');
  assert.deepEqual((await good.call(OPERATOR, 'ValidateClusterCreate', { definition: json(cluster) })).validationErrors, []);
  const broken = structuredClone(cluster);
  broken.spec.plugins[0].parameters.barmanObjectName = 'missing-store';
  const r = await good.call(OPERATOR, 'ValidateClusterChange', { oldCluster: json(cluster), newCluster: json(broken) });
  assert.equal(r.validationErrors.length, 1);
  assert.deepEqual(r.validationErrors[0].pathComponents, ['spec', 'plugins', '0', 'parameters', 'barmanObjectName']);
  assert.equal(r.validationErrors[0].value, 'missing-store');
  assert.match(r.validationErrors[0].message, /ObjectStore app\/missing-store not found/);
});

test('OperatorLifecycle: capabilities, and the hook injects the sidecar with the ObjectStore resources and the configured image', async () => {
  const caps = await good.call(LIFECYCLE, 'GetCapabilities');
  assert.deepEqual(caps.lifecycleCapabilities.map((c: { kind: string }) => c.kind), ['Pod', 'Job']);
  const pod = fixture('pod-1.30');
  const res = await good.call(LIFECYCLE, 'LifecycleHook', { operationType: { type: 'TYPE_CREATE' }, clusterDefinition: json(fixture('cluster-plugin')), objectDefinition: json(pod) });
  const patched = applyPatch(pod, JSON.parse(res.jsonPatch.toString()));
  assert.deepEqual(kubeShapeProblems(patched, 'V1Pod'), []);
  const sidecar = patched.spec.initContainers.find((c: { name: string }) => c.name === 'pgark-plugin');
  assert.equal(sidecar.image, 'ghcr.io/example/pgark:2.0.0');
  assert.deepEqual(sidecar.resources, { limits: { memory: '256Mi' }, requests: { memory: '100Mi' } });
  // A pod of a cluster that does not use pgark gets no patch at all.
  const none = await good.call(LIFECYCLE, 'LifecycleHook', { operationType: { type: 'TYPE_CREATE' }, clusterDefinition: json(fixture('cluster-other-plugin')), objectDefinition: json(pod) });
  assert.equal(none.jsonPatch.length, 0);
});

test('ReconcilerHooks: Pre keeps the Role in the API, requeues while a store is missing; Post continues', async () => {
  const caps = await good.call(RECONCILER, 'GetCapabilities');
  assert.deepEqual(caps.reconcilerCapabilities, [{ kind: 'KIND_CLUSTER' }]);
  const cluster = fixture('cluster-plugin');
  const pre = await good.call(RECONCILER, 'Pre', { clusterDefinition: json(cluster), resourceDefinition: json(cluster) });
  assert.equal(pre.behavior, 'BEHAVIOR_CONTINUE');
  const role = api.get('Role', 'app', 'cluster-example-pgark')!.rules as { resourceNames: string[] }[];
  assert.deepEqual(role[2].resourceNames, ['minio-creds']);
  assert.ok(api.get('RoleBinding', 'app', 'cluster-example-pgark'));
  const backup = { apiVersion: 'postgresql.cnpg.io/v1', kind: 'Backup', metadata: { name: 'b' }, spec: { cluster: { name: 'cluster-example' } } };
  assert.equal((await good.call(RECONCILER, 'Pre', { clusterDefinition: json(cluster), resourceDefinition: json(backup) })).behavior, 'BEHAVIOR_CONTINUE');
  const later = structuredClone(cluster);
  later.spec.plugins[0].parameters.barmanObjectName = 'not-yet';
  const requeue = await good.call(RECONCILER, 'Pre', { clusterDefinition: json(later), resourceDefinition: json(later) });
  assert.deepEqual([requeue.behavior, Number(requeue.requeueAfter)], ['BEHAVIOR_REQUEUE', 30]);
  assert.equal((await good.call(RECONCILER, 'Post', { clusterDefinition: json(cluster), resourceDefinition: json(cluster) })).behavior, 'BEHAVIOR_CONTINUE');
});

test('--role operator without certificates or without PGARK_SIDECAR_IMAGE exits 2 with what is missing', () => {
  const noCerts = spawnSync(PGARK_LAUNCHER, ['plugin', 'serve', '--role', 'operator', '--listen', '127.0.0.1:0'], { encoding: 'utf8', env: { ...process.env, PGARK_SIDECAR_IMAGE: 'x' } });
  assert.equal(noCerts.status, 2);
  assert.match(noCerts.stderr, /--role operator needs --server-cert, --server-key, --client-ca/);
  const args = ['plugin', 'serve', '--role', 'operator', '--listen', '127.0.0.1:0', '--server-cert', join(certDir, 'server.crt'), '--server-key', join(certDir, 'server.key'), '--client-ca', join(certDir, 'ca.crt')];
  const env = { ...process.env };
  delete env.PGARK_SIDECAR_IMAGE;
  const noImage = spawnSync(PGARK_LAUNCHER, args, { encoding: 'utf8', env });
  assert.equal(noImage.status, 2);
  assert.match(noImage.stderr, /PGARK_SIDECAR_IMAGE is not set/);
});

test('pgark plugin probe (the sidecar startup probe) succeeds only while the socket accepts connections', async () => {
  const socketDir = join(tmp.path, 'sock');
  const probe = () => spawnSync(PGARK_LAUNCHER, ['plugin', 'probe', '--name', 'pgark.io', '--socket-dir', socketDir], { encoding: 'utf8' });
  const before = probe();
  assert.equal(before.status, 1);
  assert.match(before.stderr, /plugin socket .*pgark\.io does not accept connections \(ENOENT\)/);
  mkdirSync(socketDir);
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(join(socketDir, 'pgark.io'), resolve));
  try {
    assert.equal(probe().status, 0);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
