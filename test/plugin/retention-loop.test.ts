/**
 * The sidecar's retention loop against a real s3rver holding a catalog written with the catalog
 * tests' fixtures (real backup.info files, WAL objects), and the Kubernetes API played by
 * test/harness/kube-api.ts (no API server runs here; it serves the documented contract): backups
 * outside the window go, WAL at or after the SetFirstRequired floor stays even when older than
 * the window, only the current primary acts, the recovery window lands in the ObjectStore status.
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kubeClusterReader, kubeObjectStores } from '../../src/config/kube.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { walsPrefix } from '../../src/catalog/layout.js';
import { planRetention } from '../../src/catalog/retention.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { retentionCycle, startRetentionLoop, type CycleOutcome, type RetentionLoopConfig } from '../../src/plugin/retention-loop.js';
import { rfc3339 } from '../../src/plugin/recovery-window.js';
import { pluginRole, startKubeApi, type KubeApi } from '../harness/kube-api.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { allKeys, backupIdAt, DAY, segments, syntheticInfo, walName, writeBackup, writeWals, type SyntheticBackup } from '../catalog/synthetic.js';
import { apiPluginConfig, capturingLogger, putObjectStore } from './kube-helpers.js';
import { writeFirstRequired } from '../../src/plugin/first-required.js';
import { startPlugin } from '../../src/plugin/serve.js';
import { scratchDir } from '../harness/tmp.js';

const NS = 'prod';
const SERVER = 'pg';
const TOKEN = 'sidecar-token';

/** Four DONE backups 40, 35, 20 and 1 days old and a FAILED one 2 days old, WAL 1..16 on timeline 1. */
function catalogAt(now: number): SyntheticBackup[] {
  const at = (days: number) => new Date(now - days * DAY);
  return [
    { id: backupIdAt(at(40)), beginSeg: 2, endSeg: 3, endTime: at(40) },
    { id: backupIdAt(at(35)), beginSeg: 6, endSeg: 7, endTime: at(35) },
    { id: backupIdAt(at(20)), beginSeg: 10, endSeg: 11, endTime: at(20) },
    { id: backupIdAt(at(2)), beginSeg: 12, endSeg: 12, endTime: at(2), status: 'FAILED' },
    { id: backupIdAt(at(1)), beginSeg: 14, endSeg: 15, endTime: at(1) },
  ];
}

const FLOOR = walName(1, 4);
const PLUGIN = 'pgark.example';

test('the WAL floor: retention keeps WAL at or after it (any timeline) that the window alone would delete', () => {
  const now = Date.now();
  const backups = catalogAt(now).map(syntheticInfo);
  const wals = [...segments(1, 1, 16), ...segments(2, 1, 3)].map((name) => ({ key: `w/${name}`, name, size: 1 }));
  const deletedWith = (walFloor?: string) => planRetention({ serverName: SERVER, backups, wals, policy: '30d', now: new Date(now), walFloor }).steps.flatMap((s) => s.walKeys.map((k) => k.slice(2)));
  assert.deepEqual(deletedWith(), segments(1, 1, 5), 'without a floor: everything before the next backup\'s begin_wal');
  assert.deepEqual(deletedWith(FLOOR), segments(1, 1, 3));
  // A floor on a later timeline still protects the same positions on timeline 1.
  assert.deepEqual(deletedWith(walName(2, 4)), segments(1, 1, 3));
});

interface Fixture {
  api: KubeApi;
  ts: TestStore;
  store: ObjectStore;
  backups: SyntheticBackup[];
  cfg: (podName: string) => RetentionLoopConfig;
  lines: string[];
  sa: { dir: string; env: Record<string, string> };
}

/** Runs `fn` with the catalog on a fresh s3rver, the ObjectStore, its Secret and the Cluster in a fresh API server. */
async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const api = await startKubeApi();
  const ts = await startStore('s3');
  const store = await openObjectStore(ts.resolved(SERVER));
  const backups = catalogAt(Date.now());
  for (const b of backups) await writeBackup(store, SERVER, b);
  await writeWals(store, SERVER, segments(1, 1, 16), '.gz');
  api.grant(TOKEN, pluginRole(['store-a'], [ts.secretName], ['pg']), `system:serviceaccount:${NS}:pg`);
  putObjectStore(api, ts, 'store-a', NS, { retentionPolicy: '30d', instanceSidecarConfiguration: { retentionPolicyIntervalSeconds: 600 } });
  api.put({
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: 'pg', namespace: NS },
    spec: { instances: 2, plugins: [{ name: PLUGIN, isWALArchiver: true, parameters: { barmanObjectName: 'store-a' } }] },
    status: { currentPrimary: 'pg-1' },
  });
  // The floor as SetFirstRequired persists it.
  await writeFirstRequired(store, SERVER, FLOOR);
  const sa = api.serviceAccount(TOKEN, NS);
  const kube = { env: sa.env, serviceAccountDir: sa.dir };
  const { log, lines } = capturingLogger();
  const cfg = (podName: string): RetentionLoopConfig => ({
    pluginName: PLUGIN,
    clusterName: 'pg',
    namespace: NS,
    podName,
    readCluster: kubeClusterReader(kube),
    config: apiPluginConfig(sa),
    objectStores: kubeObjectStores(kube),
    log,
  });
  try {
    await fn({ api, ts, store, backups, cfg, lines, sa });
  } finally {
    await store.close();
    await ts.stop();
    await api.close();
  }
}

test('only the current primary applies retention; it deletes outside the window, keeps WAL from the floor on, writes the recovery window', async () => {
  await withFixture(async ({ api, ts, store, backups, cfg, lines }) => {
    const replica = await retentionCycle(cfg('pg-2'));
    assert.deepEqual(replica, { kind: 'skipped', reason: 'not the current primary (pg-1)', nextSeconds: 600 });
    assert.equal((await listBackups(store, SERVER)).backups.length, 5, 'a replica deletes nothing');
    assert.equal(api.get('ObjectStore', NS, 'store-a')!.status, undefined, 'nor writes the status');

    const outcome = await retentionCycle(cfg('pg-1'));
    assert.equal(outcome.kind, 'done');
    const done = outcome as Extract<CycleOutcome, { kind: 'done' }>;
    assert.deepEqual(done.deleted, [backups[0].id]);
    assert.equal(done.walDeleted, 3);
    assert.equal(done.nextSeconds, 600);

    const remaining = (await listBackups(store, SERVER)).backups.map((b) => b.backup_id);
    assert.deepEqual(remaining, backups.slice(1).map((b) => b.id));
    const wal = (await allKeys(store, walsPrefix(SERVER))).map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.gz$/, ''));
    assert.deepEqual(wal, segments(1, 4, 16), 'WAL 4 and 5 are older than the window but at or after the floor');

    const status = api.get('ObjectStore', NS, 'store-a')!.status as { serverRecoveryWindow: Record<string, Record<string, string>> };
    assert.deepEqual(status.serverRecoveryWindow, {
      [SERVER]: {
        firstRecoverabilityPoint: rfc3339(backups[1].endTime),
        lastSuccessfulBackupTime: rfc3339(backups[4].endTime),
        lastFailedBackupTime: rfc3339(backups[3].endTime),
      },
    });
    assert.match(status.serverRecoveryWindow[SERVER].firstRecoverabilityPoint, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Nothing read from the Secret reaches the logs or the status.
    assert.ok(lines.some((l) => l.includes('retention deleted backup')));
    const published = JSON.stringify(api.get('ObjectStore', NS, 'store-a'));
    for (const value of [ts.secretValues.ACCESS_KEY_ID, ts.secretValues.ACCESS_SECRET_KEY]) {
      assert.ok(!lines.some((l) => l.includes(value)), `a log line holds a secret value`);
      assert.ok(!published.includes(value));
    }
  });
});

test('the loop runs a cycle at once and stop() waits for it; a failed cycle is reported, not thrown', async () => {
  await withFixture(async ({ api, cfg, lines }) => {
    const outcomes: (CycleOutcome | Error)[] = [];
    const loop = startRetentionLoop(cfg('pg-1'), (o) => outcomes.push(o));
    await loop.stop();
    assert.equal(outcomes.length, 1, 'stop() resolved after the cycle under way had finished');
    assert.equal((outcomes[0] as CycleOutcome).kind, 'done');
    assert.ok(api.get('ObjectStore', NS, 'store-a')!.status, 'the status was written before stop() returned');

    // The Role is taken away: the cycle fails with a permission error, the loop logs it and carries on.
    api.grant(TOKEN, []);
    const failing = startRetentionLoop(cfg('pg-1'), (o) => outcomes.push(o));
    await failing.stop();
    assert.ok(outcomes[1] instanceof Error);
    assert.match((outcomes[1] as Error).message, /may not read clusters\/pg in prod/);
    assert.ok(lines.some((l) => l.includes('retention cycle failed')));
  });
});

test('plugin serve --role instance in a pod runs the loop: ObjectStore from the API, retention applied, status written, stopped by close()', async () => {
  await withFixture(async ({ api, store, backups, sa }) => {
    const socketDir = scratchDir('plugin-socket');
    try {
      const env = { ...sa.env, NAMESPACE: NS, CLUSTER_NAME: 'pg', POD_NAME: 'pg-1' };
      const plugin = await startPlugin({ role: 'instance', name: PLUGIN, socketDir: socketDir.path, files: [], env, serviceAccountDir: sa.dir });
      // close() is what SIGTERM runs; it returns after the cycle that started with the plugin.
      await plugin.close();
      assert.deepEqual((await listBackups(store, SERVER)).backups.map((b) => b.backup_id), backups.slice(1).map((b) => b.id));
      const window = (api.get('ObjectStore', NS, 'store-a')!.status as { serverRecoveryWindow: Record<string, { firstRecoverabilityPoint: string }> }).serverRecoveryWindow[SERVER];
      assert.equal(window.firstRecoverabilityPoint, rfc3339(backups[1].endTime));

      // Without its pod identity the instance sidecar refuses to start rather than never applying retention.
      await assert.rejects(
        startPlugin({ role: 'instance', name: PLUGIN, socketDir: socketDir.path, files: [], env: sa.env, serviceAccountDir: sa.dir }),
        /plugin serve --role instance in a cluster needs NAMESPACE, CLUSTER_NAME, POD_NAME in its environment/,
      );
    } finally {
      socketDir.cleanup();
    }
  });
});
