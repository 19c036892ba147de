/**
 * The Role and RoleBinding the reconciler hooks keep for a Cluster, written through pgark's
 * Kubernetes client (src/config/kube-client.ts) to a local server that plays the documented
 * Kubernetes API (test/harness/kube-api.ts; no API server runs here).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { operatorKube } from '../../src/plugin/operator/kube.js';
import { desiredRole, reconcileRbac, secretNamesOf } from '../../src/plugin/operator/rbac.js';
import { readCluster } from '../../src/plugin/config.js';
import { objectStore, operatorKubeconfig, secret, startKubeApi, type KubeObject } from '../harness/kube-api.js';
import { kubeShapeProblems } from '../harness/kube-shapes.js';
import { scratchDir } from '../harness/tmp.js';

const tmp = scratchDir('operator-rbac');
const api = await startKubeApi();
const kubeconfig = operatorKubeconfig(api);
after(async () => {
  await api.close();
  tmp.cleanup();
});
const kube = operatorKube({ KUBECONFIG: kubeconfig });
const fixture = (name: string) => JSON.parse(JSON.stringify(parse(readFileSync(`test/fixtures/cnpg-pods/${name}.yaml`, 'utf8'))));

const clusterFixture = (name: string) => readCluster(fixture(name));

const s3Store = (name: string, creds: string) =>
  objectStore(name, {
    destinationPath: 's3://backups/',
    endpointURL: 'https://minio:9000',
    endpointCA: { name: 'minio-ca', key: 'ca.crt' },
    s3Credentials: { accessKeyId: { name: creds, key: 'ACCESS_KEY_ID' }, secretAccessKey: { name: creds, key: 'ACCESS_SECRET_KEY' } },
  });
api.put(s3Store('restore-store', 'minio-creds'));
api.put(objectStore('origin-store', { destinationPath: 'https://acct.blob.core.windows.net/c/p', azureCredentials: { connectionString: { name: 'azure-creds', key: 'AZURE_CONNECTION_STRING' } } }));
api.put(objectStore('iam-store', { destinationPath: 's3://iam/', s3Credentials: { inheritFromIAMRole: true } }));
api.put(secret('minio-creds', { ACCESS_KEY_ID: 'AKIA-SECRET-ID', ACCESS_SECRET_KEY: 'very-secret' }));

// Loosely typed: the tests index into rules and ownerReferences as the JSON has them.
type Json = Record<string, any>;
const role = () => api.get('Role', 'app', 'cluster-restore-pgark') as Json | undefined;
const binding = () => api.get('RoleBinding', 'app', 'cluster-restore-pgark') as Json | undefined;

test('the first reconcile creates a Role naming exactly the referenced stores and their Secrets, and a binding to the cluster service account', async () => {
  const cluster = clusterFixture('cluster-recovery');
  const r = await reconcileRbac(kube, cluster, 'pgark.io');
  assert.deepEqual(r, { behavior: 'continue', changed: ['Role cluster-restore-pgark', 'RoleBinding cluster-restore-pgark'] });
  assert.deepEqual(role()!.rules, [
    { apiGroups: ['barmancloud.cnpg.io'], resources: ['objectstores'], verbs: ['get', 'watch', 'list'], resourceNames: ['origin-store', 'restore-store'] },
    { apiGroups: ['barmancloud.cnpg.io'], resources: ['objectstores/status'], verbs: ['update'], resourceNames: ['origin-store', 'restore-store'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'], resourceNames: ['azure-creds', 'minio-ca', 'minio-creds'] },
  ]);
  assert.deepEqual(binding()!.subjects, [{ kind: 'ServiceAccount', name: 'cluster-restore', namespace: 'app' }]);
  assert.deepEqual(binding()!.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cluster-restore-pgark' });
  assert.equal(role()!.metadata.ownerReferences[0].uid, cluster.metadata.uid);
  // The objects as pgark sent them (the server adds its own metadata).
  const sent = (plural: string) => JSON.parse(api.requests.find((x) => x.method === 'POST' && x.path.endsWith(`/${plural}`))!.body);
  assert.deepEqual(kubeShapeProblems(sent('roles'), 'V1Role'), []);
  assert.deepEqual(kubeShapeProblems(sent('rolebindings'), 'V1RoleBinding'), []);
  // No Secret value went anywhere near the RBAC objects.
  assert.doesNotMatch(JSON.stringify([role(), binding()]), /very-secret|AKIA-SECRET-ID/);
});

test('a second reconcile with the same parameters writes nothing', async () => {
  const before = api.requests.length;
  const r = await reconcileRbac(kube, clusterFixture('cluster-recovery'), 'pgark.io');
  assert.deepEqual(r, { behavior: 'continue', changed: [] });
  assert.deepEqual(api.requests.slice(before).filter((x) => x.method !== 'GET'), []);
});

test('changed parameters update the Role: the old store and its Secrets lose access, a store without Secrets opens none', async () => {
  const cluster = clusterFixture('cluster-recovery');
  cluster.spec.plugins![0].parameters!.barmanObjectName = 'iam-store';
  delete cluster.spec.bootstrap;
  const r = await reconcileRbac(kube, cluster, 'pgark.io');
  assert.deepEqual(r, { behavior: 'continue', changed: ['Role cluster-restore-pgark'] });
  // Only iam-store is left; its IAM credentials name no Secret, so there is no secrets rule at all
  // (an empty resourceNames would grant every Secret of the namespace).
  assert.deepEqual(role()!.rules.map((x: { resourceNames: string[] }) => x.resourceNames), [['iam-store'], ['iam-store']]);
});

test('a custom service account and a binding with a foreign roleRef are brought back in line', async () => {
  const b = binding()!;
  b.roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' };
  api.put(b as KubeObject);
  const cluster = clusterFixture('cluster-recovery');
  cluster.spec.serviceAccountName = 'pg-runner';
  const r = await reconcileRbac(kube, cluster, 'pgark.io');
  assert.equal(r.behavior, 'continue');
  assert.deepEqual(binding()!.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cluster-restore-pgark' });
  assert.deepEqual(binding()!.subjects, [{ kind: 'ServiceAccount', name: 'pg-runner', namespace: 'app' }]);
  assert.ok(api.requests.some((x) => `${x.method} ${x.path} ${x.status}` === 'DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/app/rolebindings/cluster-restore-pgark 200'));
});

test('a missing ObjectStore requeues and creates nothing', async () => {
  const cluster = clusterFixture('cluster-plugin');
  cluster.spec.plugins![0].parameters!.barmanObjectName = 'not-there';
  const r = await reconcileRbac(kube, cluster, 'pgark.io');
  assert.deepEqual(r, { behavior: 'requeue', reason: 'ObjectStore "not-there" not found in namespace app', requeueAfterSeconds: 30 });
  assert.equal(api.get('Role', 'app', 'cluster-example-pgark'), undefined);
});

test('Secret names are collected at every depth of spec.configuration, and only there', () => {
  const store = s3Store('x', 'creds');
  (store.spec as Record<string, unknown>).instanceSidecarConfiguration = { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'sidecar-only', key: 'k' } } }] };
  assert.deepEqual(secretNamesOf(store).sort(), ['creds', 'minio-ca']);
  assert.deepEqual(desiredRole(clusterFixture('cluster-plugin'), []).rules, []);
});
