/**
 * `pgark plugin serve` and the Identity service, called over the socket with a client built from
 * the upstream CNPG-I protos: metadata (name = socket name, version from package.json) and the
 * capabilities of each role; --name barman-cloud.cloudnative-pg.io; unknown roles refused; a
 * stale socket replaced but a live one left alone; Probe ready with the right credentials and not
 * ready with a wrong one (real s3rver behind its signature-checking front), the reason logged
 * without the secret.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { clusterJson, cnpgClient, IDENTITY, pluginCluster, WAL } from '../harness/cnpg-client.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { runPgark } from '../wal/helpers.js';
import { startPluginProcess, until, writeStoreManifests } from './helpers.js';

const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('plugin serve: Identity', () => {
  const dir = scratchDir('plugin-identity');
  let store: TestStore;
  before(async () => {
    store = await startStore('s3');
  });
  after(async () => {
    await store?.stop();
    dir.cleanup();
  });

  for (const [role, capabilities] of [
    ['instance', ['TYPE_WAL_SERVICE', 'TYPE_BACKUP_SERVICE', 'TYPE_METRICS']],
    ['restore', ['TYPE_RESTORE_JOB', 'TYPE_WAL_SERVICE']],
  ] as const) {
    test(`--role ${role}: metadata and capabilities`, async () => {
      const socketDir = join(dir.path, `sock-${role}`);
      const plugin = await startPluginProcess({ socketDir, role });
      const client = cnpgClient(plugin.socketPath);
      try {
        const meta = await client.call(IDENTITY, 'GetPluginMetadata');
        assert.equal(meta.name, 'pgark.io');
        assert.equal(plugin.socketPath, join(socketDir, 'pgark.io'));
        assert.equal(meta.version, version);
        assert.equal(meta.displayName, 'pgark');
        assert.equal(meta.license, 'Apache-2.0');
        assert.ok(meta.vendor && meta.projectUrl && meta.licenseUrl);
        const caps = await client.call(IDENTITY, 'GetPluginCapabilities');
        assert.deepEqual(caps.capabilities.map((c: { service: { type: string } }) => c.service.type), capabilities);
      } finally {
        client.close();
      }
      assert.equal((await plugin.stop()).code, 0);
      assert.ok(!existsSync(plugin.socketPath), 'socket removed on exit');
    });
  }

  test('--name barman-cloud.cloudnative-pg.io names the socket and the metadata, in $PLUGIN_SOCKET_DIR without --socket-dir', async () => {
    const socketDir = join(dir.path, 'sock-env');
    const plugin = await startPluginProcess({ socketDir, socketDirFromEnv: true, name: 'barman-cloud.cloudnative-pg.io' });
    assert.ok(existsSync(join(socketDir, 'barman-cloud.cloudnative-pg.io')));
    const client = cnpgClient(join(socketDir, 'barman-cloud.cloudnative-pg.io'));
    try {
      assert.equal((await client.call(IDENTITY, 'GetPluginMetadata')).name, 'barman-cloud.cloudnative-pg.io');
    } finally {
      client.close();
    }
    assert.equal((await plugin.stop()).code, 0);
  });

  test('roles other than instance, restore and operator are refused with exit 2 and a clear message', async () => {
    for (const role of ['sidecar', 'Instance']) {
      const r = await runPgark(['plugin', 'serve', '--role', role, '--socket-dir', join(dir.path, 'never')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--role "${role}" is not a plugin role pgark serves`));
      assert.match(r.stderr, /use --role instance, --role restore, --role operator/);
    }
    assert.ok(!existsSync(join(dir.path, 'never')), 'nothing created');
  });

  test('a stale socket file is replaced; a socket someone listens on is left alone', async () => {
    const socketDir = join(dir.path, 'sock-stale');
    const path = join(socketDir, 'pgark.io');
    // A socket bound by a process that is gone: nothing listens on it.
    const py = spawnSync('python3', ['-c', `import os,socket; os.makedirs("${socketDir}", exist_ok=True); socket.socket(socket.AF_UNIX).bind("${path}")`]);
    assert.equal(py.status, 0, String(py.stderr));
    assert.ok(existsSync(path));
    const plugin = await startPluginProcess({ socketDir });
    assert.match(plugin.output(), /removing stale plugin socket/);
    const second = await runPgark(['plugin', 'serve', '--role', 'instance', '--socket-dir', socketDir]);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /another process is listening on/);
    const client = cnpgClient(path);
    try {
      assert.equal((await client.call(IDENTITY, 'GetPluginMetadata')).name, 'pgark.io', 'the first plugin still serves');
    } finally {
      client.close();
    }
    assert.equal((await plugin.stop()).code, 0);
    // A regular file under the socket's name is not ours to delete.
    writeFileSync(path, 'not a socket');
    const refused = await runPgark(['plugin', 'serve', '--role', 'instance', '--socket-dir', socketDir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /exists and is not a socket/);
    assert.equal(readFileSync(path, 'utf8'), 'not a socket');
  });

  test('Probe: ready with the -f Cluster\'s store and its credentials; not ready with a wrong key, the reason logged without the secret', async () => {
    const cluster = pluginCluster({ name: 'probe', pluginName: 'pgark.io', barmanObjectName: 'store' });
    const good = writeStoreManifests(dir.path, store, 'store', { extraDocs: [cluster] });
    const socketDir = join(dir.path, 'sock-probe');
    const plugin = await startPluginProcess({ socketDir, args: ['-f', good] });
    const client = cnpgClient(plugin.socketPath);
    try {
      // The check runs in the background from the start; Probe answers from it at once.
      await until('Probe ready', async () => (await client.call(IDENTITY, 'Probe')).ready === true);
    } finally {
      client.close();
      await plugin.stop();
    }

    const wrongSecret = 'WRONG-secret-value-4711';
    const badDir = join(dir.path, 'bad');
    mkdirSync(badDir, { recursive: true });
    const bad = join(badDir, 'bad.yaml');
    const docs = readFileSync(good, 'utf8').replace(store.secretValues.ACCESS_SECRET_KEY, wrongSecret);
    assert.ok(docs.includes(wrongSecret));
    writeFileSync(bad, docs);
    const badPlugin = await startPluginProcess({ socketDir, args: ['-f', bad] });
    const badClient = cnpgClient(badPlugin.socketPath);
    try {
      await until('the failed store check', () => badPlugin.output().includes('plugin not ready'));
      assert.equal((await badClient.call(IDENTITY, 'Probe')).ready, false);
    } finally {
      badClient.close();
      await badPlugin.stop();
    }
    const log = badPlugin.output();
    assert.match(log, /plugin not ready: the object store cannot be reached/);
    assert.match(log, /credentials rejected/);
    assert.ok(!log.includes(wrongSecret), 'the secret value is not in the log');
  });

  test('Probe without a -f Cluster: not ready until a call reached a store', async () => {
    const socketDir = join(dir.path, 'sock-noprobe');
    const plugin = await startPluginProcess({ socketDir, args: ['-f', writeStoreManifests(dir.path, store, 'only-store')] });
    const client = cnpgClient(plugin.socketPath);
    try {
      assert.equal((await client.call(IDENTITY, 'Probe')).ready, false);
      const cluster = pluginCluster({ name: 'later', pluginName: 'pgark.io', barmanObjectName: 'only-store' });
      await client.call(WAL, 'Status', { clusterDefinition: clusterJson(cluster) });
      assert.equal((await client.call(IDENTITY, 'Probe')).ready, true);
    } finally {
      client.close();
      await plugin.stop();
    }
  });
});
