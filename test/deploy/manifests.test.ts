/**
 * deploy/: every manifest parses, every kustomization lists its files, the Service carries exactly
 * what CloudNativePG discovers a plugin by, and the ObjectStore CRD accepts plugin-barman-cloud's
 * objects and pgark migrate's output while refusing serverName and a bad retentionPolicy.
 *
 * No Kubernetes API server, CNPG operator or kustomize binary is part of the test environment, so
 * this tests against their documented contracts (cnpg-i-plugin.md §1.4, §1.5): the CRD schema is
 * applied by test/deploy/openapi.ts, a validator of the OpenAPI keywords and CEL rules it uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { validate, type Schema } from './openapi.js';
import { migrateManifests } from '../../src/config/migrate.js';

const DEPLOY = join(process.cwd(), 'deploy');
type Obj = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(n) ? [p] : [];
  });
}

function docsOf(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  assert.ok(Array.isArray(docs), `${file}: no documents`);
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: YAML errors`);
  return docs.map((d) => d.toJS() as Obj);
}

const all = () => yamlFiles(DEPLOY).filter((f) => !f.endsWith('kustomization.yaml')).flatMap((f) => docsOf(f).map((doc) => ({ file: f, doc })));
const one = (kind: string, name?: string): Obj => {
  const found = all().filter(({ doc }) => doc.kind === kind && (!name || doc.metadata?.name === name));
  assert.equal(found.length, 1, `expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0].doc;
};

test('every manifest in deploy/ parses and is a Kubernetes object', () => {
  const docs = all();
  assert.ok(docs.length >= 10, `only ${docs.length} objects`);
  for (const { file, doc } of docs) {
    assert.match(String(doc.apiVersion), /^[a-z0-9.-]*\/?v1(alpha1|beta1)?$/, `${file}: apiVersion`);
    assert.equal(typeof doc.kind, 'string', `${file}: kind`);
    assert.equal(typeof doc.metadata?.name, 'string', `${file}: metadata.name`);
  }
});

test('each kustomization lists every file beside it, and every entry exists', () => {
  const kustomizations = yamlFiles(DEPLOY).filter((f) => f.endsWith('kustomization.yaml'));
  const reached = new Set<string>();
  for (const k of kustomizations) {
    const dir = dirname(k);
    const [doc] = docsOf(k);
    assert.match(doc.kind, /^(Kustomization|Component)$/, relative(DEPLOY, k));
    const entries: string[] = [...(doc.resources ?? []), ...(doc.components ?? [])];
    for (const e of entries) {
      const p = join(dir, e);
      assert.ok(existsSync(p), `${relative(DEPLOY, k)} lists ${e}, which does not exist`);
      if (statSync(p).isDirectory()) {
        assert.ok(existsSync(join(p, 'kustomization.yaml')), `${e} has no kustomization.yaml`);
        reached.add(p);
      }
    }
    const beside = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n) && n !== 'kustomization.yaml');
    for (const n of beside) assert.ok(doc.resources?.includes(n), `${relative(DEPLOY, k)} does not list ${n}`);
  }
  // Every kustomize directory is used by the default install or an overlay.
  for (const k of kustomizations) {
    const dir = dirname(k);
    const top = dir === DEPLOY || dirname(dir) === join(DEPLOY, 'overlays');
    assert.ok(top || reached.has(dir), `${relative(DEPLOY, dir)} is not used by deploy/ or an overlay`);
  }
  const root = docsOf(join(DEPLOY, 'kustomization.yaml'))[0];
  assert.deepEqual(root.components, ['components/objectstore-crd'], 'the default install brings the CRD');
  assert.deepEqual(docsOf(join(DEPLOY, 'overlays/existing-crd/kustomization.yaml'))[0].components, undefined, 'existing-crd skips the CRD');
});

test('the Service has the exact discovery label and annotations, matching the Deployment and the certificates', () => {
  const svc = one('Service', 'pgark');
  assert.equal(svc.metadata.labels['cnpg.io/pluginName'], 'pgark.io');
  assert.deepEqual(
    Object.fromEntries(Object.entries(svc.metadata.annotations).filter(([k]) => k.startsWith('cnpg.io/'))),
    { 'cnpg.io/pluginPort': '9090', 'cnpg.io/pluginClientSecret': 'pgark-client-tls', 'cnpg.io/pluginServerSecret': 'pgark-server-tls' },
  );
  const dep = one('Deployment', 'pgark');
  const pod = dep.spec.template;
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(pod.metadata.labels[k], v, `selector ${k}`);
  const c = pod.spec.containers[0];
  const port = c.ports.find((p: Obj) => p.name === svc.spec.ports[0].targetPort);
  assert.equal(String(port.containerPort), svc.metadata.annotations['cnpg.io/pluginPort']);
  assert.equal(String(svc.spec.ports[0].port), svc.metadata.annotations['cnpg.io/pluginPort']);

  const secretVolumes = pod.spec.volumes.filter((v: Obj) => v.secret).map((v: Obj) => v.secret.secretName).sort();
  assert.deepEqual(secretVolumes, ['pgark-client-tls', 'pgark-server-tls']);
  const certs = all().filter(({ doc }) => doc.kind === 'Certificate' && !doc.spec.isCA).map(({ doc }) => doc.spec.secretName).sort();
  assert.deepEqual(certs, secretVolumes, 'cert-manager issues exactly the Secrets the Service names');
  const server = one('Certificate', 'pgark-server');
  assert.ok(server.spec.dnsNames.includes(svc.metadata.name), 'the server certificate names the Service');
  assert.deepEqual(server.spec.usages, ['server auth']);
  assert.deepEqual(one('Certificate', 'pgark-client').spec.usages, ['client auth']);
});

test('the operator-plugin Deployment: operator role, mTLS files, sidecar image, non-root with a read-only root', () => {
  const pod = one('Deployment', 'pgark').spec.template.spec;
  const c = pod.containers[0];
  assert.deepEqual(c.args.slice(0, 4), ['plugin', 'serve', '--role', 'operator']);
  const arg = (flag: string) => c.args[c.args.indexOf(flag) + 1];
  const mountOf = (file: string) => c.volumeMounts.find((m: Obj) => file.startsWith(`${m.mountPath}/`));
  for (const flag of ['--server-cert', '--server-key', '--client-ca']) assert.ok(mountOf(arg(flag)), `${flag} ${arg(flag)} is on a mounted volume`);

  const env = c.env.find((e: Obj) => e.name === 'PGARK_SIDECAR_IMAGE');
  const base = docsOf(join(DEPLOY, 'base/kustomization.yaml'))[0];
  const generated = base.configMapGenerator.find((g: Obj) => g.name === env.valueFrom.configMapKeyRef.name);
  const literal = generated.literals.find((l: string) => l.startsWith('PGARK_SIDECAR_IMAGE='));
  const image = base.images.find((i: Obj) => i.name === c.image);
  assert.equal(literal, `PGARK_SIDECAR_IMAGE=${image.newName}:${image.newTag}`, 'the sidecar runs the same image as the operator plugin');

  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 26);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  const tmp = c.env.find((e: Obj) => e.name === 'TMPDIR').value;
  const tmpMount = c.volumeMounts.find((m: Obj) => m.mountPath === tmp);
  assert.ok(pod.volumes.find((v: Obj) => v.name === tmpMount.name).emptyDir, 'TMPDIR is an emptyDir');
  assert.ok(c.resources.limits.memory, 'a memory limit is set');
});

test('RBAC: the ClusterRole holds everything the Role it grants to sidecars holds, and can manage that Role', () => {
  const role = one('ClusterRole', 'pgark');
  const allows = (group: string, resource: string, verb: string) =>
    role.rules.some((r: Obj) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
  // What the sidecar's Role grants (cnpg-i-plugin.md §1.2): Kubernetes refuses to grant more than the granter holds.
  for (const verb of ['get', 'list', 'watch']) {
    assert.ok(allows('barmancloud.cnpg.io', 'objectstores', verb), `objectstores ${verb}`);
    assert.ok(allows('', 'secrets', verb), `secrets ${verb}`);
    assert.ok(allows('postgresql.cnpg.io', 'clusters', verb), `clusters ${verb}`);
  }
  assert.ok(allows('barmancloud.cnpg.io', 'objectstores/status', 'update'));
  for (const verb of ['create', 'update', 'get']) {
    assert.ok(allows('rbac.authorization.k8s.io', 'roles', verb), `roles ${verb}`);
    assert.ok(allows('rbac.authorization.k8s.io', 'rolebindings', verb), `rolebindings ${verb}`);
  }
  assert.ok(!allows('', 'secrets', 'create') && !allows('', 'secrets', 'update'), 'the plugin never writes Secrets');
  const binding = one('ClusterRoleBinding', 'pgark');
  const base = docsOf(join(DEPLOY, 'base/kustomization.yaml'))[0];
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: one('ServiceAccount').metadata.name, namespace: base.namespace }]);
  assert.equal(one('Deployment', 'pgark').spec.template.spec.serviceAccountName, 'pgark');
});

const crd = () => one('CustomResourceDefinition', 'objectstores.barmancloud.cnpg.io');
const objectStoreSchema = (): Schema => crd().spec.versions.find((v: Obj) => v.name === 'v1').schema.openAPIV3Schema;

/** plugin-barman-cloud's hack/examples/minio-store.yaml, written from cnpg-i-plugin.md §1.5. */
const MINIO_STORE = {
  apiVersion: 'barmancloud.cnpg.io/v1',
  kind: 'ObjectStore',
  metadata: { name: 'minio-store' },
  spec: {
    retentionPolicy: '1m',
    instanceSidecarConfiguration: {
      logLevel: 'debug',
      retentionPolicyIntervalSeconds: 1800,
      resources: { requests: { memory: '64Mi', cpu: '250m' }, limits: { memory: '512Mi', cpu: '500m' } },
      env: [{ name: 'AWS_REQUEST_CHECKSUM_CALCULATION', value: 'when_required' }],
    },
    configuration: {
      endpointCA: { name: 'minio-server-tls', key: 'tls.crt' },
      destinationPath: 's3://backups/',
      endpointURL: 'https://minio:9000',
      s3Credentials: { accessKeyId: { name: 'minio', key: 'ACCESS_KEY_ID' }, secretAccessKey: { name: 'minio', key: 'ACCESS_SECRET_KEY' } },
      wal: { compression: 'gzip', maxParallel: 8 },
      data: { additionalCommandArgs: ['--min-chunk-size=5MB', '--read-timeout=60', '-vv'] },
    },
  },
  status: {
    serverRecoveryWindow: { 'cluster-example': { firstRecoverabilityPoint: '2026-07-01T00:00:00Z', lastSuccessfulBackupTime: '2026-07-02T00:00:00Z' } },
  },
};

test('the ObjectStore CRD: v1, namespaced, status subresource, and the kind pgark and plugin-barman-cloud share', () => {
  const c = crd();
  assert.equal(c.spec.group, 'barmancloud.cnpg.io');
  assert.equal(c.spec.scope, 'Namespaced');
  assert.deepEqual(c.spec.names, { kind: 'ObjectStore', listKind: 'ObjectStoreList', plural: 'objectstores', singular: 'objectstore' });
  const v1 = c.spec.versions.find((v: Obj) => v.name === 'v1');
  assert.deepEqual([v1.served, v1.storage, v1.subresources], [true, true, { status: {} }]);
});

test('the CRD schema accepts plugin-barman-cloud examples and ObjectStores made by pgark migrate from the seed', async () => {
  const schema = objectStoreSchema();
  assert.deepEqual(validate(schema, MINIO_STORE), []);
  const azure = {
    apiVersion: 'barmancloud.cnpg.io/v1',
    kind: 'ObjectStore',
    metadata: { name: 'azure-store' },
    spec: {
      configuration: {
        destinationPath: 'https://account.blob.core.windows.net/container/pg',
        azureCredentials: { storageAccount: { name: 'az', key: 'ACCOUNT' }, storageSasToken: { name: 'az', key: 'SAS' } },
        data: { compression: 'snappy', jobs: 4, immediateCheckpoint: true },
        tags: { team: 'db' },
      },
    },
  };
  assert.deepEqual(validate(schema, azure), []);
  let seen = 0;
  for (const f of ['s3-backup', 'recovery-s3', 'azure-backup', 'recovery-azure', 's3-iam-role']) {
    const r = await migrateManifests({ files: [`test/fixtures/manifests/seed/${f}.yaml`], from: 'in-tree', name: 'pgark.io' });
    for (const doc of r.files.flatMap((x) => parseAllDocuments(x.text) as unknown as { toJS(): Obj }[]).map((d) => d.toJS())) {
      if (doc.kind !== 'ObjectStore') continue;
      seen++;
      assert.deepEqual(validate(schema, doc), [], `${f}: ObjectStore ${doc.metadata.name}`);
    }
  }
  assert.ok(seen >= 6, `only ${seen} ObjectStores from the seed`);
});

test('the CRD schema refuses serverName, a bad retentionPolicy, unknown fields, a missing destinationPath and --log-level', () => {
  const schema = objectStoreSchema();
  const withSpec = (patch: (spec: Obj) => void) => {
    const o = structuredClone(MINIO_STORE) as Obj;
    patch(o.spec);
    return validate(schema, o);
  };
  assert.deepEqual(
    withSpec((s) => (s.configuration.serverName = 'pg')),
    ["spec.configuration: use the 'serverName' plugin parameter in the Cluster resource"],
  );
  for (const bad of ['30', '0d', '30 days', '1y', '30D', '-1d', '']) {
    assert.deepEqual(withSpec((s) => (s.retentionPolicy = bad)), [`spec.retentionPolicy: does not match ^[1-9][0-9]*[dwm]$`], `retentionPolicy ${JSON.stringify(bad)}`);
  }
  for (const good of ['1d', '30d', '4w', '12m', '365d']) assert.deepEqual(withSpec((s) => (s.retentionPolicy = good)), [], good);
  assert.deepEqual(withSpec((s) => (s.configuration.wal.compresion = 'gzip')), ['spec.configuration.wal.compresion: unknown field']);
  assert.deepEqual(withSpec((s) => delete s.configuration.destinationPath), ['spec.configuration.destinationPath: required']);
  assert.deepEqual(withSpec((s) => (s.configuration.wal.maxParallel = 0)), ['spec.configuration.wal.maxParallel: must be at least 1']);
  assert.deepEqual(withSpec((s) => (s.configuration.s3Credentials.accessKeyId = { name: 'x' })), ['spec.configuration.s3Credentials.accessKeyId.key: required']);
  assert.deepEqual(
    withSpec((s) => (s.instanceSidecarConfiguration.additionalContainerArgs = ['--log-level=debug'])),
    ['spec.instanceSidecarConfiguration.additionalContainerArgs: do not set --log-level in additionalContainerArgs; use spec.instanceSidecarConfiguration.logLevel'],
  );
  assert.deepEqual(withSpec((s) => (s.instanceSidecarConfiguration.logLevel = 'verbose')), ['spec.instanceSidecarConfiguration.logLevel: must be one of error, warning, info, debug, trace']);
});
