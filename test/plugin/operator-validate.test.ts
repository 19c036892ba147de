/**
 * Operator.ValidateClusterCreate/Change's checks, one mistake at a time: each gives exactly one
 * ValidationError naming the Cluster field it stems from, with pgark's own message and hint, and
 * never a Secret value. ObjectStores and Secrets are read through pgark's Kubernetes client from a
 * local server playing the documented API (test/harness/kube-api.ts; no API server runs here).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ChainedSecretResolver } from '../../src/config/secrets.js';
import { kubeObjectStores } from '../../src/config/kube.js';
import { PluginConfig, readCluster } from '../../src/plugin/config.js';
import { validateCluster } from '../../src/plugin/operator/validate.js';
import { objectStore, operatorKubeconfig, secret, startKubeApi } from '../harness/kube-api.js';
import { scratchDir } from '../harness/tmp.js';
import { emptyManifestSet } from '../../src/config/index.js';

const tmp = scratchDir('operator-validate');
const api = await startKubeApi();
const kubeconfig = operatorKubeconfig(api);
after(async () => {
  await api.close();
  tmp.cleanup();
});
const env = { KUBECONFIG: kubeconfig };

const creds = (key = 'ACCESS_KEY_ID') => ({ accessKeyId: { name: 'minio-creds', key }, secretAccessKey: { name: 'minio-creds', key: 'ACCESS_SECRET_KEY' } });
api.put(secret('minio-creds', { ACCESS_KEY_ID: 'AKIA-SECRET-ID', ACCESS_SECRET_KEY: 'very-secret' }));
api.put(objectStore('minio-store', { destinationPath: 's3://backups/', s3Credentials: creds() }, { retentionPolicy: '30d' }));
api.put(objectStore('origin-store', { destinationPath: 's3://origin/', s3Credentials: creds() }));
api.put(objectStore('restore-store', { destinationPath: 's3://restore/', s3Credentials: creds() }));
api.put(objectStore('bad-retention', { destinationPath: 's3://backups/', s3Credentials: creds() }, { retentionPolicy: '30days' }));
api.put(objectStore('bad-key', { destinationPath: 's3://backups/', s3Credentials: creds('ACCESS_KEY') }));
api.put(objectStore('with-server-name', { destinationPath: 's3://backups/', serverName: 'pg', s3Credentials: creds() }));

const fixture = (name: string) => JSON.parse(JSON.stringify(parse(readFileSync(`test/fixtures/cnpg-pods/${name}.yaml`, 'utf8'))));

async function validate(cluster: unknown) {
  const stores = new PluginConfig(kubeObjectStores({ env, cacheTtlMs: 0 }), {
    manifests: emptyManifestSet(),
    secrets: new ChainedSecretResolver({ manifests: [], env }),
  });
  const errors = await validateCluster(readCluster(cluster as object), 'pgark.io', stores);
  assert.doesNotMatch(JSON.stringify(errors), /very-secret|AKIA-SECRET-ID/, 'no Secret value in a validation message');
  return errors;
}

function withStore(name: string, base = 'cluster-plugin') {
  const c = fixture(base);
  c.spec.plugins[0].parameters.barmanObjectName = name;
  return c;
}

const TARGET = ['spec', 'plugins', '0', 'parameters', 'barmanObjectName'];

test('valid clusters (archiving, and recovering from another store) pass', async () => {
  assert.deepEqual(await validate(fixture('cluster-plugin')), []);
  assert.deepEqual(await validate(fixture('cluster-recovery')), []);
});

test('a missing ObjectStore', async () => {
  const [e, ...rest] = await validate(withStore('nowhere'));
  assert.equal(rest.length, 0);
  assert.deepEqual([e.pathComponents, e.value], [TARGET, 'nowhere']);
  assert.match(e.message, /ObjectStore app\/nowhere not found; hint: create the ObjectStore/);
});

test('a bad retentionPolicy in the ObjectStore', async () => {
  const [e, ...rest] = await validate(withStore('bad-retention'));
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, TARGET);
  assert.match(e.message, /ObjectStore app\/bad-retention spec\.retentionPolicy: must be a number of days, weeks or months/);
});

test('a Secret key that does not exist: the keys that do are named, their values are not', async () => {
  const [e, ...rest] = await validate(withStore('bad-key'));
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, TARGET);
  assert.match(e.message, /secret "minio-creds" key "ACCESS_KEY" not found/);
  assert.match(e.message, /keys: ACCESS_KEY_ID, ACCESS_SECRET_KEY/);
});

test('serverName set inside the ObjectStore', async () => {
  const [e, ...rest] = await validate(withStore('with-server-name'));
  assert.equal(rest.length, 0);
  assert.match(e.message, /spec\.configuration\.serverName: serverName must not be set in an ObjectStore; hint: set it per Cluster instead: spec\.plugins\[\]\.parameters\.serverName/);
});

test('two WAL archivers', async () => {
  const c = fixture('cluster-plugin');
  c.spec.plugins.push({ name: 'barman-cloud.cloudnative-pg.io', isWALArchiver: true, parameters: { barmanObjectName: 'minio-store' } });
  const [e, ...rest] = await validate(c);
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, ['spec', 'plugins', '1', 'isWALArchiver']);
  assert.match(e.message, /only one plugin may archive WAL, but "pgark\.io" and "barman-cloud\.cloudnative-pg\.io" set isWALArchiver: true; hint:/);
});

test('barmanObjectStore combined with a plugin archiver', async () => {
  const c = fixture('cluster-plugin');
  c.spec.backup = { barmanObjectStore: { destinationPath: 's3://old/', s3Credentials: { inheritFromIAMRole: true } } };
  const [e, ...rest] = await validate(c);
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, ['spec', 'backup', 'barmanObjectStore']);
  assert.match(e.message, /archives WAL in-tree while plugin "pgark\.io" is the WAL archiver; hint: move the store into an ObjectStore/);
});

test('a plugin entry without barmanObjectName', async () => {
  const c = fixture('cluster-plugin');
  c.spec.plugins[0].parameters = {};
  const [e, ...rest] = await validate(c);
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, TARGET);
  assert.match(e.message, /parameters\.barmanObjectName is required/);
});

test('a problem of the recovery source is reported at its externalClusters entry', async () => {
  const c = fixture('cluster-recovery');
  c.spec.externalClusters[0].plugin.parameters.barmanObjectName = 'bad-retention';
  const [e, ...rest] = await validate(c);
  assert.equal(rest.length, 0);
  assert.deepEqual(e.pathComponents, ['spec', 'externalClusters', '0', 'plugin', 'parameters', 'barmanObjectName']);
  assert.equal(e.value, 'bad-retention');
});
