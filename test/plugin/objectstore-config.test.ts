/**
 * The ObjectStore kind (barmancloud.cnpg.io/v1) in -f manifests and the plugin's resolution of
 * Cluster plugin parameters to a ResolvedObjectStore: defaults, CNPG's rules (serverName
 * forbidden, the retentionPolicy pattern), file:line:column errors like every other kind, the
 * recovery source of externalClusters, and ObjectStore documents from another source (as the
 * Kubernetes API returns them) validated once per resourceVersion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyManifestSet, loadManifests } from '../../src/config/index.js';
import { ChainedSecretResolver } from '../../src/config/secrets.js';
import { ConfigError } from '../../src/util/errors.js';
import { PluginConfig, readCluster, manifestObjectStoreSource } from '../../src/plugin/config.js';
import { isWalArchiver, recoveryStoreRef, targetStoreRef } from '../../src/config/plugin-form.js';
import { scratchDir } from '../harness/tmp.js';

const STORE = `apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata:
  name: minio-store
spec:
  retentionPolicy: "30d"
  instanceSidecarConfiguration:
    resources: {limits: {memory: 512Mi}}
  configuration:
    destinationPath: s3://backups/
    endpointURL: http://minio:9000
    s3Credentials:
      accessKeyId: {name: minio, key: ACCESS_KEY_ID}
      secretAccessKey: {name: minio, key: ACCESS_SECRET_KEY}
    wal: {compression: gzip, maxParallel: 8}
---
apiVersion: v1
kind: Secret
metadata: {name: minio}
stringData: {ACCESS_KEY_ID: id-value, ACCESS_SECRET_KEY: secret-value-99}
`;

function write(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('an ObjectStore in -f manifests loads with its defaults and resolves through the Cluster\'s plugin parameters', async () => {
  const dir = scratchDir('objstore');
  try {
    const set = await loadManifests([write(dir.path, 'store.yaml', STORE)]);
    assert.equal(set.objectStores.length, 1);
    assert.equal(set.objectStores[0].spec.instanceSidecarConfiguration?.retentionPolicyIntervalSeconds, 1800);
    const config = new PluginConfig(manifestObjectStoreSource(set), { manifests: set, secrets: new ChainedSecretResolver({ manifests: set.secrets, env: {} }) });
    const cluster = readCluster(
      Buffer.from(JSON.stringify({ metadata: { name: 'cluster-example', namespace: 'prod' }, spec: { plugins: [{ name: 'barman-cloud.cloudnative-pg.io', isWALArchiver: true, parameters: { barmanObjectName: 'minio-store' } }] }, status: { phase: 'x' } })),
    );
    const ref = targetStoreRef(cluster, 'barman-cloud.cloudnative-pg.io');
    assert.deepEqual(ref, {
      namespace: 'prod',
      objectName: 'minio-store',
      serverName: 'cluster-example',
      skipEmptyCheck: false,
      serverNameField: 'spec.plugins[0].parameters.serverName',
      objectNameField: 'spec.plugins[0].parameters.barmanObjectName',
    });
    const resolved = await config.resolve(ref);
    assert.equal(resolved.serverName, 'cluster-example');
    assert.equal(resolved.destinationPath, 's3://backups/');
    assert.equal(resolved.s3?.secretAccessKey, 'secret-value-99');
    assert.ok(!resolved.credentialSource.includes('secret-value-99'));
    // Request parameters override the entry's (serverName).
    assert.equal(targetStoreRef(cluster, 'barman-cloud.cloudnative-pg.io', { serverName: 'other' }).serverName, 'other');
  } finally {
    dir.cleanup();
  }
});

test('ObjectStore errors carry file:line:column, field path and hint: serverName, retentionPolicy, unknown fields', async () => {
  const dir = scratchDir('objstore-bad');
  try {
    const bad = STORE.replace('retentionPolicy: "30d"', 'retentionPolicy: "30 days"')
      .replace('    destinationPath: s3://backups/', '    destinationPath: s3://backups/\n    serverName: pg')
      .replace('    resources:', '    resourcez: {}\n    resources:');
    const file = write(dir.path, 'bad.yaml', bad);
    await assert.rejects(loadManifests([file]), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const text = err.message;
      assert.match(text, new RegExp(`${file}:6:\\d+: spec.retentionPolicy: must be a number of days, weeks or months`));
      assert.match(text, new RegExp(`${file}:12:\\d+: spec.configuration.serverName: serverName must not be set in an ObjectStore\\n  hint: set it per Cluster instead: spec.plugins\\[\\].parameters.serverName`));
      assert.match(text, new RegExp(`${file}:8:\\d+: spec.instanceSidecarConfiguration.resourcez: unknown field`));
      assert.ok(!text.includes('secret-value-99'));
      return true;
    });
  } finally {
    dir.cleanup();
  }
});

test('documents from another source (the Kubernetes API) are validated with the resource named, and parsed once per resourceVersion', async () => {
  const api = { metadata: { name: 's', namespace: 'ns', resourceVersion: '1', managedFields: [] }, apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', spec: { configuration: { destinationPath: 'file:///tmp/x' } }, status: {} };
  let reads = 0;
  const source = {
    async read() {
      reads++;
      return api;
    },
  };
  const set = emptyManifestSet();
  const config = new PluginConfig(source, { manifests: set, secrets: new ChainedSecretResolver({ manifests: [], env: {} }) });
  const first = await config.objectStore('s', 'ns');
  assert.equal(await config.objectStore('s', 'ns'), first, 'same resourceVersion: the parsed object is reused');
  assert.equal(reads, 2);
  api.metadata.resourceVersion = '2';
  (api.spec.configuration as Record<string, unknown>).serverName = 'nope';
  await assert.rejects(config.objectStore('s', 'ns'), /ObjectStore ns\/s spec.configuration.serverName: serverName must not be set/);
});

test('recovery source and the archiver guard follow the Cluster\'s plugin entries', () => {
  const cluster = readCluster({
    metadata: { name: 'restored' },
    spec: {
      bootstrap: { recovery: { source: 'origin' } },
      externalClusters: [{ name: 'origin', plugin: { name: 'pgark.io', parameters: { barmanObjectName: 'old-store' } } }],
      plugins: [
        { name: 'pgark.io', isWALArchiver: true, parameters: { barmanObjectName: 'new-store' } },
        { name: 'other', enabled: false },
      ],
    },
  });
  assert.deepEqual(recoveryStoreRef(cluster, 'pgark.io'), {
    namespace: undefined,
    objectName: 'old-store',
    serverName: 'origin',
    skipEmptyCheck: false,
    serverNameField: 'spec.externalClusters[0].plugin.parameters.serverName',
    objectNameField: 'spec.externalClusters[0].plugin.parameters.barmanObjectName',
  });
  assert.equal(isWalArchiver(cluster, 'pgark.io'), true);
  assert.equal(isWalArchiver(cluster, 'other'), false, 'a disabled entry never archives');
  assert.throws(() => recoveryStoreRef(cluster, 'barman-cloud.cloudnative-pg.io'), /has no plugin section for "barman-cloud.cloudnative-pg.io"/);
  const two = readCluster({ metadata: { name: 'x' }, spec: { plugins: [{ name: 'pgark.io', parameters: { barmanObjectName: 'a' } }, { name: 'b' }] } });
  assert.equal(isWalArchiver(two, 'pgark.io'), false, 'two enabled entries and none marked: not the archiver');
});
