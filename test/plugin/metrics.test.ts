/**
 * The plugin's Metrics service on a real PostgreSQL 15 archiving through the plugin into Azurite
 * (the sidecar as its own process, called by the test client built from the upstream protos):
 * Define's names and types, Collect's values before and after backups (the last-available
 * timestamp is the backup's end time, as Backup.status.stoppedAt says), after a failed backup,
 * and while archiving is stuck (the .ready lag). The catalog cache is checked against the real
 * store reader: one read per TTL, shared by concurrent scrapes, renewed after invalidation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { CatalogSummaries, readCatalogSummary } from '../../src/plugin/catalog-summary.js';
import type { PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterJson, pluginCluster } from '../harness/cnpg-client.js';
import { createTestData } from '../backup/helpers.js';
import { writeStoreManifests } from './helpers.js';
import { PLUGIN_NAME, startPluginArchivedServer, type Sidecar } from './sidecar-process.js';
import { archiveCurrentWal } from '../recovery/helpers.js';

const METRICS = 'cnpgi.metrics.v1.Metrics';
const BACKUP = 'cnpgi.backup.v1.Backup';
const CLUSTER = 'metrics-cluster';
const P = 'pgark_io';

let store: TestStore;
let dir: { path: string; cleanup(): void };
let pg: PgServer;
let sidecar: Sidecar;
let cluster: object;

async function collect(): Promise<Record<string, number>> {
  const r = await sidecar.client.call(METRICS, 'Collect', { clusterDefinition: clusterJson(cluster) });
  return Object.fromEntries((r.metrics as { fqName: string; value: number }[]).map((m) => [m.fqName, m.value]));
}

function backup(name: string) {
  const backupDefinition = Buffer.from(
    JSON.stringify({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Backup', metadata: { name }, spec: { cluster: { name: CLUSTER }, method: 'plugin', pluginConfiguration: { name: PLUGIN_NAME }, onlineConfiguration: { immediateCheckpoint: true } } }),
  );
  return sidecar.client.call(BACKUP, 'Backup', { clusterDefinition: clusterJson(cluster), backupDefinition, parameters: {} });
}

before(async () => {
  store = await startStore('azure-connection-string');
  dir = scratchDir('plugin-metrics');
  const objectStores = writeStoreManifests(dir.path, store, 'azure-store');
  cluster = pluginCluster({ name: CLUSTER, pluginName: PLUGIN_NAME, barmanObjectName: 'azure-store' });
  ({ pg, sidecar } = await startPluginArchivedServer({ dir: dir.path, manifests: [objectStores], cluster, parameters: { barmanObjectName: 'azure-store' } }));
  await createTestData(pg, 2000);
});

after(async () => {
  await sidecar?.stop();
  await pg?.destroy();
  await store?.stop();
  dir?.cleanup();
});

test('GetCapabilities and Define: the barman-cloud gauges under the plugin name, plus pgark\'s own', async () => {
  const caps = await sidecar.client.call(METRICS, 'GetCapabilities', {});
  assert.deepEqual(caps.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type), ['TYPE_METRICS']);
  const r = await sidecar.client.call(METRICS, 'Define', { clusterDefinition: clusterJson(cluster) });
  const defs = r.metrics as { fqName: string; help: string; valueType: { type: string } }[];
  assert.deepEqual(
    defs.map((d) => d.fqName),
    [
      `${P}_first_recoverability_point`,
      `${P}_last_available_backup_timestamp`,
      `${P}_last_failed_backup_timestamp`,
      `${P}_wal_archive_lag_segments`,
      `${P}_wal_archive_lag_seconds`,
      `${P}_last_archived_wal_age_seconds`,
      `${P}_recoverability_window_seconds`,
    ],
  );
  for (const d of defs) {
    assert.equal(d.valueType.type, 'TYPE_GAUGE', d.fqName);
    assert.ok(d.help.length > 10, d.fqName);
  }
});

test('Collect before any backup: the backup gauges are 0, the newest archived WAL is seconds old', async () => {
  await archiveCurrentWal(pg);
  const m = await collect();
  assert.equal(m[`${P}_first_recoverability_point`], 0);
  assert.equal(m[`${P}_last_available_backup_timestamp`], 0);
  assert.equal(m[`${P}_last_failed_backup_timestamp`], 0);
  assert.equal(m[`${P}_recoverability_window_seconds`], 0);
  assert.ok(m[`${P}_last_archived_wal_age_seconds`] > 0 && m[`${P}_last_archived_wal_age_seconds`] < 120, String(m[`${P}_last_archived_wal_age_seconds`]));
});

test("Collect after backups: last available = the newest backup's end time, first recoverability point = the oldest's", async () => {
  const first = await backup('metrics-one');
  let m = await collect();
  assert.equal(m[`${P}_last_available_backup_timestamp`], first.stoppedAt);
  assert.equal(m[`${P}_first_recoverability_point`], first.stoppedAt);
  const second = await backup('metrics-two');
  await archiveCurrentWal(pg);
  m = await collect();
  assert.ok(second.stoppedAt >= first.stoppedAt);
  assert.equal(m[`${P}_last_available_backup_timestamp`], second.stoppedAt);
  assert.equal(m[`${P}_first_recoverability_point`], first.stoppedAt);
  assert.equal(m[`${P}_last_failed_backup_timestamp`], 0);
  assert.ok(m[`${P}_recoverability_window_seconds`] >= second.stoppedAt - first.stoppedAt, `window ${m[`${P}_recoverability_window_seconds`]}`);
});

test('a backup failing on a broken archive_command: gRPC error with the reason, last_failed set, .ready files show the lag', async () => {
  await pg.query("ALTER SYSTEM SET archive_command = 'false'");
  await pg.query('SELECT pg_reload_conf()');
  const t0 = Math.floor(Date.now() / 1000);
  const err = (await backup('metrics-failing').then(
    () => assert.fail('the backup succeeded without WAL archiving'),
    (e: unknown) => e,
  )) as { code: number; details: string };
  // The server's archiving is broken: a state the user must fix before a backup can be usable, not a bug.
  assert.equal(err.code, status.FAILED_PRECONDITION, err.details);
  assert.match(err.details, /archive_command/);
  const t1 = Math.ceil(Date.now() / 1000);
  const m = await collect();
  const failed = m[`${P}_last_failed_backup_timestamp`];
  assert.ok(failed >= t0 && failed <= t1, `last failed ${failed} within ${t0}..${t1}`);
  assert.ok(m[`${P}_wal_archive_lag_segments`] >= 1, `lag ${m[`${P}_wal_archive_lag_segments`]} segments`);
  assert.ok(m[`${P}_wal_archive_lag_seconds`] >= 0);
  assert.ok(m[`${P}_last_available_backup_timestamp`] > 0, 'the DONE backups are still available');
});

test('the catalog cache: one store read per TTL, shared by concurrent scrapes, renewed after invalidate()', async () => {
  let reads = 0;
  let now = 1_000_000;
  const cache = new CatalogSummaries(30_000, (r) => (reads++, readCatalogSummary(r, now)), () => now);
  const resolved = store.resolved(CLUSTER);
  const [a, b] = await Promise.all([cache.get(resolved), cache.get(resolved)]);
  assert.equal(reads, 1, 'concurrent scrapes share one read');
  assert.equal(a, b);
  assert.ok(a.lastAvailableBackup! > 0 && a.lastArchivedWal !== undefined);
  now += 29_000;
  await cache.get(resolved);
  assert.equal(reads, 1, 'fresh within the TTL');
  now += 2_000;
  await cache.get(resolved);
  assert.equal(reads, 2, 'read again once the TTL passed');
  cache.invalidate(resolved);
  await cache.get(resolved);
  assert.equal(reads, 3, 'read again after invalidate()');
});
