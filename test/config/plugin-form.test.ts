/**
 * Plugin-form manifests in the config layer: spec.plugins[] and externalClusters[].plugin are
 * validated fields (file:line:col, CNPG's archiver rules), and clusterObjectStore /
 * externalClusterObjectStore / backupStoreSpec find the ObjectStore a pgark.io or
 * barman-cloud.cloudnative-pg.io reference names, the same store the plugin's own PluginConfig
 * resolves, with hints naming the plugin-form fields (serverName, retentionPolicy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupStoreSpec, clusterObjectStore, clusterStoreSpec, externalClusterObjectStore, loadContext, loadManifests, type ConfigContext } from '../../src/config/index.js';
import { targetStoreRef } from '../../src/config/plugin-form.js';
import { PluginConfig, manifestObjectStoreSource, readCluster } from '../../src/plugin/config.js';
import { openObjectStore } from '../../src/storage/open.js';
import { ArchiveNotEmptyError, checkEmptyArchive } from '../../src/wal/empty-check.js';
import { ConfigError, UserError } from '../../src/util/errors.js';
import { scratchDir } from '../harness/tmp.js';

const NO_KUBE = { PATH: process.env.PATH } as NodeJS.ProcessEnv;

function objectStore(name: string, destinationPath: string, extra = ''): string {
  return `apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: ${name}}
spec:
  retentionPolicy: "14d"
  configuration:
    destinationPath: ${destinationPath}
${extra}`;
}

const S3_CREDS = `    s3Credentials:
      accessKeyId: {name: creds, key: ID}
      secretAccessKey: {name: creds, key: KEY}
    wal: {compression: gzip, maxParallel: 4}
`;
const SECRET = `apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {ID: the-id, KEY: the-secret-key-42}
`;

/** A Cluster document's first four lines, down to `spec:` (so line numbers in the tests stay what they look like). */
function clusterHead(name: string): string {
  return `apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: ${name}}\nspec:\n`;
}

/** The spec lines (seven) of a recovery from externalClusters `source`, a plugin section naming ObjectStore `objectName`. */
function recoveryThroughPlugin(source: string, plugin: string, objectName: string): string {
  return `  bootstrap:\n    recovery: {source: ${source}}\n  externalClusters:\n    - name: ${source}\n      plugin:\n        name: ${plugin}\n        parameters: {barmanObjectName: ${objectName}}\n`;
}

/** Writes the documents as one file and loads it; the scratch directory is removed afterwards. */
async function withFile<T>(docs: string[], fn: (file: string) => Promise<T>): Promise<T> {
  const dir = scratchDir('plugin-form');
  try {
    const file = join(dir.path, 'm.yaml');
    writeFileSync(file, docs.join('---\n'));
    return await fn(file);
  } finally {
    dir.cleanup();
  }
}

/** withFile, with the manifests loaded and their Secrets resolvable (no Kubernetes API). */
function withContext<T>(docs: string[], fn: (ctx: ConfigContext, file: string) => Promise<T>): Promise<T> {
  return withFile(docs, async (file) => fn(await loadContext({ files: [file], env: NO_KUBE }), file));
}

async function configError(files: string[]): Promise<ConfigError> {
  try {
    await loadManifests(files);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('the manifests were accepted');
}

test('spec.plugins and externalClusters[].plugin are fields pgark acts on, not ignored ones', async () => {
  await withFile(
    [
      objectStore('store', 's3://b/p', S3_CREDS),
      `${clusterHead('pg')}  plugins:
    - name: pgark.io
      isWALArchiver: true
      parameters: {barmanObjectName: store}
  externalClusters:
    - name: old
      plugin:
        name: barman-cloud.cloudnative-pg.io
        parameters: {barmanObjectName: store, serverName: origin}
`,
      `apiVersion: postgresql.cnpg.io/v1
kind: Backup
metadata: {name: b1}
spec:
  method: plugin
  cluster: {name: pg}
  pluginConfiguration: {name: pgark.io}
`,
      SECRET,
    ],
    async (file) => {
      const set = await loadManifests([file]);
      assert.deepEqual(set.clusters[0].ignoredFields, []);
      assert.deepEqual(set.backups[0].ignoredFields, []);
      assert.deepEqual(set.clusters[0].spec.plugins, [{ name: 'pgark.io', isWALArchiver: true, parameters: { barmanObjectName: 'store' } }]);
    },
  );
});

test('bad plugin entries: file:line:col, CNPG\'s archiver rules, typos named', async () => {
  await withFile(
    [
      `${clusterHead('pg')}  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      s3Credentials: {inheritFromIAMRole: true}
  plugins:
    - name: pgark.io
      isWALArchiver: true
    - name: other.example.com
      isWALArchiver: true
    - parameter: {barmanObjectName: x}
  externalClusters:
    - name: old
      plugin: {parameters: {barmanObjectName: store}}
`,
    ],
    async (file) => {
      const e = await configError([file]);
      const at = (path: string) => e.issues.find((i) => i.path === path);
      const two = at('spec.plugins[1].isWALArchiver');
      assert.match(two?.message ?? '', /only one plugin may archive WAL, but "pgark\.io" and "other\.example\.com" set isWALArchiver: true/);
      assert.deepEqual([two?.position?.line, two?.position?.column], [13, 22]);
      const inTree = at('spec.backup.barmanObjectStore');
      assert.match(inTree?.message ?? '', /archives WAL in-tree while plugin "pgark\.io" is the WAL archiver/);
      assert.equal(inTree?.position?.line, 7);
      assert.match(at('spec.plugins[2].parameter')?.message ?? '', /unknown field "parameter"/);
      assert.match(at('spec.plugins[2].parameter')?.hint ?? '', /parameters/);
      assert.match(at('spec.plugins[2].name')?.message ?? '', /required field is missing/);
      assert.equal(at('spec.externalClusters[0].plugin.name')?.position?.line, 17);
    },
  );
});

test('a plugin-form Cluster: clusterObjectStore resolves its ObjectStore, serverName and retention from the plugin form, as the plugin does', async () => {
  await withContext(
    [
      objectStore('store', 's3://b/p', S3_CREDS),
      `${clusterHead('pg')}  plugins:
    - name: other.example.com
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters: {barmanObjectName: store, serverName: pg-v2}
`,
      SECRET,
    ],
    async (ctx) => {
      const cluster = ctx.manifests.clusters[0];
      const resolved = await clusterObjectStore(ctx, cluster);
      assert.equal(resolved.destinationPath, 's3://b/p');
      assert.equal(resolved.serverName, 'pg-v2');
      assert.deepEqual(resolved.s3, { accessKeyId: 'the-id', secretAccessKey: 'the-secret-key-42' });
      assert.equal(resolved.config.wal?.maxParallel, 4);
      assert.equal(resolved.retentionPolicy, '14d');
      assert.deepEqual(resolved.fields, {
        config: 'ObjectStore store spec.configuration',
        serverName: 'spec.plugins[1].parameters.serverName',
        retentionPolicy: 'ObjectStore store spec.retentionPolicy',
      });
      // One implementation: the plugin's request path lands on the same store.
      const plugin = new PluginConfig(manifestObjectStoreSource(ctx.manifests), ctx);
      const viaPlugin = await plugin.resolve(targetStoreRef(readCluster(cluster), 'barman-cloud.cloudnative-pg.io'));
      assert.deepEqual(viaPlugin, resolved);
    },
  );
});

test('an in-tree Cluster keeps its own store and fields; a non-archiver plugin entry beside it does not move it', async () => {
  await withContext(
    [
      objectStore('store', 's3://other/p', S3_CREDS),
      `${clusterHead('pg')}  plugins:
    - name: pgark.io
      parameters: {barmanObjectName: store}
  backup:
    retentionPolicy: 7d
    barmanObjectStore:
      destinationPath: s3://b/in-tree
      s3Credentials:
        accessKeyId: {name: creds, key: ID}
        secretAccessKey: {name: creds, key: KEY}
`,
      SECRET,
    ],
    async (ctx) => {
      const resolved = await clusterObjectStore(ctx, ctx.manifests.clusters[0]);
      assert.equal(resolved.destinationPath, 's3://b/in-tree');
      assert.equal(resolved.retentionPolicy, '7d');
      assert.equal(resolved.fields?.serverName, 'spec.backup.barmanObjectStore.serverName');
      // A Backup with method: plugin goes where its pluginConfiguration points.
      const backup = { kind: 'Backup', metadata: { name: 'b' }, spec: { method: 'plugin', pluginConfiguration: { name: 'pgark.io' } } } as Parameters<typeof backupStoreSpec>[2];
      assert.equal(backupStoreSpec(ctx.manifests, ctx.manifests.clusters[0], backup).config.destinationPath, 's3://other/p');
      const foreign = { ...backup, spec: { method: 'plugin', pluginConfiguration: { name: 'other.example.com' } } } as typeof backup;
      assert.throws(() => backupStoreSpec(ctx.manifests, ctx.manifests.clusters[0], foreign), /plugin "other\.example\.com" is not served by pgark/);
      const snapshot = { ...backup, spec: { method: 'volumeSnapshot' } } as typeof backup;
      assert.throws(() => backupStoreSpec(ctx.manifests, ctx.manifests.clusters[0], snapshot), /Backup "b": spec\.method volumeSnapshot is not supported by pgark/);
    },
  );
});

test('a barmanObjectName with no ObjectStore among the manifests: file:line:col and the ObjectStores that were found', async () => {
  await withContext(
    [
      objectStore('store-a', 's3://b/p', S3_CREDS),
      `${clusterHead('pg')}${recoveryThroughPlugin('old', 'pgark.io', 'store-b')}  plugins:
    - name: pgark.io
      parameters:
        barmanObjectName: stor-a
`,
      SECRET,
    ],
    async (ctx, file) => {
      const cluster = ctx.manifests.clusters[0];
      await assert.rejects(clusterObjectStore(ctx, cluster), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const [i] = e.issues;
        assert.equal(i.path, 'spec.plugins[0].parameters.barmanObjectName');
        assert.deepEqual([i.position?.file, i.position?.line, i.position?.column], [file, 27, 27]);
        assert.match(i.message, /no ObjectStore named "stor-a" among the manifests/);
        assert.equal(i.hint, 'ObjectStores found: store-a');
        return true;
      });
      await assert.rejects(externalClusterObjectStore(ctx, cluster, 'old'), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.issues[0].path, 'spec.externalClusters[0].plugin.parameters.barmanObjectName');
        assert.equal(e.issues[0].position?.line, 23);
        return true;
      });
    },
  );
});

test('a recovery source in plugin form; a Cluster with neither form names both', async () => {
  await withContext(
    [
      objectStore('old-store', 's3://b/p', S3_CREDS),
      `${clusterHead('restored')}${recoveryThroughPlugin('origin', 'barman-cloud.cloudnative-pg.io', 'old-store')}`,
      SECRET,
    ],
    async (ctx) => {
      const cluster = ctx.manifests.clusters[0];
      const source = await externalClusterObjectStore(ctx, cluster, 'origin');
      assert.equal(source.serverName, 'origin', 'serverName defaults to the external cluster name');
      assert.equal(source.destinationPath, 's3://b/p');
      assert.equal(clusterStoreSpec(ctx.manifests, cluster), undefined);
      await assert.rejects(clusterObjectStore(ctx, cluster), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, /has no spec\.backup\.barmanObjectStore and no spec\.plugins entry for pgark\.io or barman-cloud\.cloudnative-pg\.io/);
        return true;
      });
    },
  );
});

test('two served plugin entries and no archiver are ambiguous', async () => {
  await withContext(
    [
      objectStore('a', 's3://b/a', S3_CREDS),
      `${clusterHead('pg')}  plugins:
    - {name: pgark.io, parameters: {barmanObjectName: a}}
    - {name: barman-cloud.cloudnative-pg.io, parameters: {barmanObjectName: a}}
`,
      SECRET,
    ],
    async (ctx) => {
      assert.throws(() => clusterStoreSpec(ctx.manifests, ctx.manifests.clusters[0]), /neither is the WAL archiver/);
    },
  );
});

test('the empty-archive hint names parameters.serverName of the plugin entry for a plugin-form Cluster', async () => {
  const storeDir = scratchDir('plugin-form-store');
  try {
    await withContext(
      [
        objectStore('local', `file://${storeDir.path}`),
        `${clusterHead('pg')}  plugins: [{name: pgark.io, parameters: {barmanObjectName: local}}]
`,
      ],
      async (ctx) => {
        const resolved = await clusterObjectStore(ctx, ctx.manifests.clusters[0]);
        const store = await openObjectStore(resolved);
        try {
          await store.put('pg/wals/0000000100000000/000000010000000000000001', Buffer.alloc(16));
          await assert.rejects(checkEmptyArchive(store, resolved.serverName, { serverNameField: resolved.fields?.serverName }), (e: unknown) => {
            assert.ok(e instanceof ArchiveNotEmptyError);
            assert.match(e.hint ?? '', /^set a new spec\.plugins\[0\]\.parameters\.serverName for this cluster/);
            return true;
          });
        } finally {
          await store.close();
        }
      },
    );
  } finally {
    storeDir.cleanup();
  }
});
