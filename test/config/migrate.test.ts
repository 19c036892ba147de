/**
 * `pgark migrate`: the seed's in-tree manifests become ObjectStores plus pgark plugin references
 * that pgark's own validator accepts and that resolve to the very same store (destinationPath,
 * serverName, credentials, compression), with retention and schedules kept; plugin-barman-cloud
 * references are renamed; bad input is reported at file:line:col and nothing is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { clusterObjectStore, externalClusterObjectStore, loadContext, loadManifests } from '../../src/config/index.js';
import { migrateManifests, type MigrateOptions } from '../../src/config/migrate.js';
import { ConfigError } from '../../src/util/errors.js';
import { PluginConfig, manifestObjectStoreSource, readCluster } from '../../src/plugin/config.js';
import { externalStoreRef, targetStoreRef } from '../../src/config/plugin-form.js';
import type { ResolvedObjectStore } from '../../src/config/types.js';
import { scratchDir } from '../harness/tmp.js';

const SEED = 'test/fixtures/manifests/seed';
const PGARK = join(process.cwd(), 'bin', 'pgark.js');
const NO_KUBE = { PATH: process.env.PATH } as NodeJS.ProcessEnv;

/** Runs the migration and writes its output into a scratch directory, under the input's file names. */
async function migrated(files: string[], opts: Partial<MigrateOptions> = {}) {
  const r = await migrateManifests({ files, from: 'in-tree', name: 'pgark.io', ...opts });
  const dir = scratchDir('migrate');
  for (const f of r.files) writeFileSync(join(dir.path, basename(f.source)), f.text);
  return { ...r, dir };
}

/** Runs `fn` with a scratch directory, removed afterwards. */
async function inScratch(label: string, fn: (dir: { path: string }) => Promise<void>): Promise<void> {
  const dir = scratchDir(label);
  try {
    await fn(dir);
  } finally {
    dir.cleanup();
  }
}

/** What decides where and how the data goes: everything but where the credentials were read from. */
function essence(s: ResolvedObjectStore) {
  const { serverName: _drop, ...config } = s.config;
  return { destinationPath: s.destinationPath, endpointURL: s.endpointURL, endpointCA: s.endpointCA, serverName: s.serverName, s3: s.s3, azure: s.azure, google: s.google, config };
}

test('every seed manifest: the migrated output validates and resolves to the same store, secrets and all', async () => {
  let compared = 0;
  for (const name of readdirSync(SEED).filter((f) => f.endsWith('.yaml'))) {
    const file = join(SEED, name);
    const before = await loadContext({ files: [file], env: NO_KUBE });
    const r = await migrated([file]);
    try {
      const after = await loadContext({ files: [r.dir.path], env: NO_KUBE });
      assert.equal(after.manifests.clusters.length, before.manifests.clusters.length, name);
      const plugin = new PluginConfig(manifestObjectStoreSource(after.manifests), after);
      for (const old of before.manifests.clusters) {
        const now = after.manifests.clusters.find((c) => c.metadata.name === old.metadata.name)!;
        assert.equal(now.spec.backup?.barmanObjectStore, undefined, `${name}: barmanObjectStore removed`);
        assert.equal(now.spec.backup?.retentionPolicy, undefined, `${name}: retentionPolicy moved`);
        const view = readCluster(now);
        if (old.spec.backup?.barmanObjectStore) {
          const ref = targetStoreRef(view, 'pgark.io');
          assert.deepEqual(essence(await plugin.resolve(ref)), essence(await clusterObjectStore(before, old)), `${name}: own store`);
          const entry = (now.spec.plugins as { name: string; isWALArchiver?: boolean }[]).find((p) => p.name === 'pgark.io');
          assert.equal(entry?.isWALArchiver, true);
          const store = after.manifests.objectStores.find((o) => o.metadata.name === ref.objectName)!;
          assert.equal(store.spec.retentionPolicy, old.spec.backup.retentionPolicy, `${name}: retention`);
          compared++;
        }
        for (const ext of old.spec.externalClusters ?? []) {
          if (!ext.barmanObjectStore) continue;
          const ref = externalStoreRef(view, 'pgark.io', ext.name);
          assert.deepEqual(essence(await plugin.resolve(ref)), essence(await externalClusterObjectStore(before, old, ext.name)), `${name}: external ${ext.name}`);
          compared++;
        }
      }
      for (const s of before.manifests.scheduledBackups) {
        const now = after.manifests.scheduledBackups.find((x) => x.metadata.name === s.metadata.name)!;
        assert.deepEqual(
          [now.spec.schedule, now.spec.immediate, now.spec.suspend, now.spec.cluster, now.spec.method, now.spec.pluginConfiguration],
          [s.spec.schedule, s.spec.immediate, s.spec.suspend, s.spec.cluster, 'plugin', { name: 'pgark.io' }],
        );
      }
    } finally {
      r.dir.cleanup();
    }
  }
  assert.ok(compared >= 6, `only ${compared} stores compared`);
});

test('s3-backup: one ObjectStore before the Cluster, serverName kept explicit, comments kept', async () => {
  const r = await migrated([`${SEED}/s3-backup.yaml`]);
  r.dir.cleanup();
  const text = r.files[0].text;
  const docs = (parseAllDocuments(text) as unknown as { toJS(): any }[]).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => d.kind), ['ObjectStore', 'Cluster', 'Secret'], 'the ObjectStore is applied first');
  assert.equal(docs[0].metadata.name, 'grafana-pg-store');
  assert.equal(docs[0].spec.retentionPolicy, '30d');
  assert.equal(docs[0].spec.configuration.destinationPath, 's3://grafana-backup/backups');
  assert.deepEqual(docs[1].spec.plugins, [
    { name: 'pgark.io', isWALArchiver: true, parameters: { barmanObjectName: 'grafana-pg-store', serverName: 'grafana-pg' } },
  ]);
  assert.equal(docs[1].spec.backup, undefined, 'an emptied spec.backup is removed');
  assert.match(text, /destinationPath: "s3:\/\/grafana-backup\/backups" # Path to the directory/);
  assert.match(text, /compression: gzip # WAL compression is enabled/);
  assert.match(text, /^# Seed "For S3": backup to S3-compatible storage\.$/m);
  assert.ok(r.summary.changes.some((c) => c.includes('s3://grafana-backup/backups/grafana-pg/')), 'the summary names the folder the archive continues in');
  assert.ok(r.summary.steps.some((s) => /ObjectStore objects first/.test(s)));
});

test('two Clusters on one bucket share one ObjectStore, each with its own serverName', async () => {
  await inScratch('migrate-in', async (dir) => {
    const store = (server?: string) => `    barmanObjectStore:
      destinationPath: s3://shared/pg
${server ? `      serverName: ${server}\n` : ''}      s3Credentials:
        accessKeyId: {name: creds, key: ID}
        secretAccessKey: {name: creds, key: KEY}
`;
    const cluster = (name: string, server?: string) => `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: ${name}, namespace: db}
spec:
  backup:
${store(server)}`;
    const file = join(dir.path, 'clusters.yaml');
    writeFileSync(file, [cluster('a'), cluster('b', 'b-archive')].join('---\n'));
    const r = await migrated([file]);
    r.dir.cleanup();
    const docs = (parseAllDocuments(r.files[0].text) as unknown as { toJS(): any }[]).map((d) => d.toJS());
    const stores = docs.filter((d) => d.kind === 'ObjectStore');
    assert.equal(stores.length, 1);
    assert.deepEqual(stores[0].metadata, { name: 'a-store', namespace: 'db' }, 'in the Clusters\' namespace');
    const params = docs.filter((d) => d.kind === 'Cluster').map((d) => d.spec.plugins[0].parameters);
    assert.deepEqual(params, [
      { barmanObjectName: 'a-store', serverName: 'a' },
      { barmanObjectName: 'a-store', serverName: 'b-archive' },
    ]);
  });
});

test('--from barman-cloud-plugin renames the plugin references and leaves the ObjectStore alone', async () => {
  await inScratch('migrate-plugin', async (dir) => {
    const file = join(dir.path, 'plugin.yaml');
    const objectStore = `apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: minio-store}
spec:
  retentionPolicy: "30d"
  configuration:
    destinationPath: s3://backups/
    s3Credentials:
      accessKeyId: {name: minio, key: ACCESS_KEY_ID}
      secretAccessKey: {name: minio, key: ACCESS_SECRET_KEY}
`;
    writeFileSync(
      file,
      [
        objectStore,
        `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: cluster-example}
spec:
  plugins:
    - name: barman-cloud.cloudnative-pg.io # the archiver
      isWALArchiver: true
      parameters: {barmanObjectName: minio-store}
  externalClusters:
    - name: source
      plugin:
        name: barman-cloud.cloudnative-pg.io
        parameters: {barmanObjectName: minio-store, serverName: old}
`,
        `apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: nightly}
spec:
  schedule: "0 0 0 * * *"
  method: plugin
  cluster: {name: cluster-example}
  pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}
`,
      ].join('---\n'),
    );
    const r = await migrated([file], { from: 'barman-cloud-plugin' });
    try {
      const text = r.files[0].text;
      assert.ok(!text.includes('barman-cloud.cloudnative-pg.io'), text);
      assert.match(text, /- name: pgark\.io # the archiver/);
      const first = (parseAllDocuments(text) as unknown as { toJS(): unknown }[])[0].toJS();
      assert.deepEqual(first, (parseAllDocuments(objectStore) as unknown as { toJS(): unknown }[])[0].toJS(), 'the ObjectStore is unchanged');
      assert.equal(r.summary.changes.length, 3);
      assert.ok(r.summary.notes.some((n) => n.includes('--name barman-cloud.cloudnative-pg.io')), 'the one-line alternative is explained');
      const set = await loadManifests([r.dir.path]);
      assert.equal(targetStoreRef(readCluster(set.clusters[0]), 'pgark.io').objectName, 'minio-store');
      assert.equal(externalStoreRef(readCluster(set.clusters[0]), 'pgark.io', 'source').serverName, 'old');
    } finally {
      r.dir.cleanup();
    }
  });
});

test('bad input: file:line:col on stderr, exit 2, nothing written', async () => {
  await inScratch('migrate-out', async (out) => {
    const target = join(out.path, 'never');
    const r = spawnSync(process.execPath, [PGARK, 'migrate', '-f', 'test/fixtures/manifests/invalid/retention-policy.yaml', '-o', target], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /test\/fixtures\/manifests\/invalid\/retention-policy\.yaml:\d+:\d+: spec\.backup\.retentionPolicy: /);
    assert.equal(r.stdout, '');
    assert.ok(!existsSync(target), 'the output directory was not created');
  });
});

test('a Cluster that already has a WAL archiver plugin: refused on load (CNPG\'s rule) at the in-tree store, nothing written', async () => {
  await inScratch('migrate-clash', async (dir) => {
    const file = join(dir.path, 'clash.yaml');
    writeFileSync(
      file,
      `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  plugins:
    - name: other.example.com
      isWALArchiver: true
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      s3Credentials: {inheritFromIAMRole: true}
`,
    );
    const before = readFileSync(file, 'utf8');
    await assert.rejects(migrateManifests({ files: [file], from: 'in-tree', name: 'pgark.io' }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.issues[0].path, 'spec.backup.barmanObjectStore');
      assert.match(e.issues[0].message, /archives WAL in-tree while plugin "other\.example\.com" is the WAL archiver/);
      assert.deepEqual([e.issues[0].position?.line, e.issues[0].position?.column], [10, 7]);
      assert.match(e.issues[0].hint ?? '', /one path/);
      return true;
    });
    const r = spawnSync(process.execPath, [PGARK, 'migrate', '-f', file, '-o', join(dir.path, 'out')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /clash\.yaml:10:7: spec\.backup\.barmanObjectStore: /);
    assert.deepEqual(readdirSync(dir.path), ['clash.yaml']);
    assert.equal(readFileSync(file, 'utf8'), before);
  });
});

test('-o DIR writes each file whole and refuses to overwrite anything; --name must be a plugin name', async () => {
  await inScratch('migrate-o', async (out) => {
    const args = ['migrate', '-f', `${SEED}/s3-backup.yaml`, '-f', `${SEED}/scheduled-backup.yaml`, '-o', out.path];
    const first = spawnSync(process.execPath, [PGARK, ...args], { encoding: 'utf8' });
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(readdirSync(out.path).sort(), ['s3-backup.yaml', 'scheduled-backup.yaml']);
    assert.match(first.stdout, /next steps:\n  1\. /);
    assert.match(readFileSync(join(out.path, 'scheduled-backup.yaml'), 'utf8'), /method: plugin\n  pluginConfiguration:\n    name: pgark\.io/);
    const again = spawnSync(process.execPath, [PGARK, ...args], { encoding: 'utf8' });
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists/);
    const inPlace = spawnSync(process.execPath, [PGARK, 'migrate', '-f', join(out.path, 's3-backup.yaml'), '-o', out.path], { encoding: 'utf8' });
    assert.equal(inPlace.status, 2);
    assert.match(inPlace.stderr, /would overwrite the input/);
    const badName = spawnSync(process.execPath, [PGARK, 'migrate', '-f', `${SEED}/s3-backup.yaml`, '--name', 'Not A Name'], { encoding: 'utf8' });
    assert.equal(badName.status, 2);
    assert.match(badName.stderr, /--name "Not A Name" is not a plugin name/);
    const badFrom = spawnSync(process.execPath, [PGARK, 'migrate', '-f', `${SEED}/s3-backup.yaml`, '--from', 'intree'], { encoding: 'utf8' });
    assert.equal(badFrom.status, 2);
    assert.match(badFrom.stderr, /--from "intree" is not one of in-tree, barman-cloud-plugin/);
  });
});
