/**
 * The plugin's RestoreJobHooks service as CNPG's recovery Job drives it: an origin PostgreSQL 15
 * archives and is backed up through an instance sidecar into s3rver; a restore sidecar (its own
 * process, PGDATA from its environment as in the Job) receives Restore with a new Cluster JSON
 * whose bootstrap.recovery.source names an externalClusters plugin entry. PostgreSQL 15 is then
 * started on the restored PGDATA with the returned restore_config, its restore_command relayed to
 * the restore sidecar's WAL.Restore, and must stop exactly at the target time and promote.
 * Refused pre-checks return FAILED_PRECONDITION with pgark's explanation and write nothing.
 * The restore sidecar runs as in pgark's image, without PostgreSQL server binaries (its own mount
 * namespace hides them, helpers.ts withoutServerBinaries): the major version of the Job's
 * postgres container is read from the Cluster instead.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterJson, pluginCluster } from '../harness/cnpg-client.js';
import { startRestored } from '../backup/helpers.js';
import { writeStoreManifests } from './helpers.js';
import { PLUGIN_NAME, startPluginArchivedServer, startSidecar, walCommand, writeClusterFiles, type Sidecar } from './sidecar-process.js';
import { archiveCurrentWal } from '../recovery/helpers.js';

const RESTORE_JOB = 'cnpgi.wal.v1.RestoreJobHooks';
const BACKUP = 'cnpgi.backup.v1.Backup';

let store: TestStore;
let dir: { path: string; cleanup(): void };
let origin: PgServer;
let instance: Sidecar;
let restoreSidecar: Sidecar;
let objectStores: string;
let pgdata: string;
let beforeBackup: string;
let between: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Cluster recovering from the origin's folder, archiving itself to `ownServerName` through the plugin. */
function recoveringCluster(o: { ownServerName?: string; recoveryTarget?: Record<string, unknown>; imageName?: string | null; imageCatalogMajor?: number; statusImage?: string } = {}): object {
  const image = o.imageCatalogMajor !== undefined
    ? { imageCatalogRef: { apiGroup: 'postgresql.cnpg.io', kind: 'ClusterImageCatalog', name: 'postgresql', major: o.imageCatalogMajor } }
    : o.imageName === null ? {} : { imageName: o.imageName ?? 'ghcr.io/cloudnative-pg/postgresql:15.8' };
  const cluster = pluginCluster({
    name: 'restored',
    namespace: 'default',
    pluginName: PLUGIN_NAME,
    barmanObjectName: 'store',
    serverName: o.ownServerName,
    spec: {
      ...image,
      bootstrap: { recovery: { source: 'origin', ...(o.recoveryTarget ? { recoveryTarget: o.recoveryTarget } : {}) } },
      externalClusters: [{ name: 'origin', plugin: { name: PLUGIN_NAME, parameters: { barmanObjectName: 'store', serverName: 'origin' } } }],
    },
  });
  return o.statusImage ? { ...cluster, status: { image: o.statusImage } } : cluster;
}

function restoreCall(cluster: object, checkEmptyWalArchive = true) {
  return restoreSidecar.client.call(RESTORE_JOB, 'Restore', { clusterDefinition: clusterJson(cluster), checkEmptyWalArchive });
}

async function expectRefused(p: Promise<unknown>, text: RegExp): Promise<void> {
  const err = (await p.then(
    () => assert.fail('Restore succeeded'),
    (e: unknown) => e,
  )) as { code: number; details: string };
  assert.equal(err.code, status.FAILED_PRECONDITION, err.details);
  assert.match(err.details, /recovery pre-check failed, nothing was written to /);
  assert.match(err.details, text);
  assert.ok(!existsSync(pgdata) || readdirSync(pgdata).length === 0, 'PGDATA untouched');
}

before(async () => {
  store = await startStore('s3');
  dir = scratchDir('plugin-restore');
  objectStores = writeStoreManifests(dir.path, store, 'store');
  const originCluster = pluginCluster({ name: 'origin', pluginName: PLUGIN_NAME, barmanObjectName: 'store' });
  ({ pg: origin, sidecar: instance } = await startPluginArchivedServer({ dir: dir.path, manifests: [objectStores], cluster: originCluster, parameters: { barmanObjectName: 'store' } }));
  await origin.query('CREATE TABLE rows (batch int, at timestamptz default clock_timestamp())');
  beforeBackup = new Date(Date.now() - 1000).toISOString();
  const backupDefinition = Buffer.from(JSON.stringify({ metadata: { name: 'origin-base' }, spec: { method: 'plugin', cluster: { name: 'origin' }, onlineConfiguration: { immediateCheckpoint: true } } }));
  await instance.client.call(BACKUP, 'Backup', { clusterDefinition: clusterJson(originCluster), backupDefinition, parameters: {} });
  await origin.query('INSERT INTO rows (batch) SELECT 1 FROM generate_series(1, 5)');
  await sleep(1100);
  between = new Date().toISOString();
  await sleep(1100);
  await origin.query('INSERT INTO rows (batch) SELECT 2 FROM generate_series(1, 5)');
  await archiveCurrentWal(origin);
  pgdata = join(dir.path, 'restore-job', 'pgdata');
  restoreSidecar = await startSidecar({ role: 'restore', dir: join(dir.path, 'restore-job'), files: [objectStores], env: { PGDATA: pgdata }, withoutServerBinaries: true });
});

after(async () => {
  await restoreSidecar?.stop();
  await instance?.stop();
  await origin?.destroy();
  await store?.stop();
  dir?.cleanup();
});

test('the restore sidecar sees no PostgreSQL server binaries, as in the pgark image', () => {
  // Its mount namespace, through /proc: the places pgark looks for `postgres` are empty there.
  const root = `/proc/${restoreSidecar.pid}/root`;
  assert.deepEqual(readdirSync(`${root}/usr/lib/postgresql`), []);
  assert.ok(existsSync('/usr/lib/postgresql/15/bin/postgres'), 'the test itself still has them (the Job\'s postgres container)');
});

test('GetCapabilities: KIND_RESTORE', async () => {
  const r = await restoreSidecar.client.call(RESTORE_JOB, 'GetCapabilities', {});
  assert.deepEqual(r.capabilities, [{ kind: 'KIND_RESTORE' }]);
});

test("pre-check: the new cluster's own archive already holds WAL (check_empty_wal_archive true)", async () => {
  // Its own folder is the origin's, which holds the origin's WAL.
  await expectRefused(
    restoreCall(recoveringCluster({ ownServerName: 'origin', recoveryTarget: { targetTime: between } })),
    /Expected empty archive: .* server "origin" already holds WAL.*hint: set a new serverName in the parameters of the Cluster's spec\.plugins entry "pgark\.io"/s,
  );
});

test('check_empty_wal_archive false skips the empty-archive check; a target after the last archived WAL is refused', async () => {
  const future = new Date(Date.now() + 3600_000).toISOString();
  await expectRefused(
    restoreCall(recoveringCluster({ ownServerName: 'origin', recoveryTarget: { targetTime: future } }), false),
    /targetTime .* is after the last archived WAL/,
  );
});

test('pre-check: no backup ended before the target time', async () => {
  await expectRefused(restoreCall(recoveringCluster({ recoveryTarget: { targetTime: beforeBackup } })), /no DONE backup.*before/);
});

test('pre-check: the image is another PostgreSQL major than the backup', async () => {
  await expectRefused(restoreCall(recoveringCluster({ imageName: 'ghcr.io/cloudnative-pg/postgresql:16.4', recoveryTarget: { targetTime: between } })), /PostgreSQL 16.*PostgreSQL 15/);
});

test('pre-check: spec.imageCatalogRef.major is another PostgreSQL major than the backup', async () => {
  await expectRefused(restoreCall(recoveringCluster({ imageCatalogMajor: 16, recoveryTarget: { targetTime: between } })), /spec\.imageCatalogRef\.major 16 is PostgreSQL 16, but backup \S+ was taken from PostgreSQL 15/);
});

test('pre-check: without an image in spec, status.image (the image the operator resolved) decides', async () => {
  await expectRefused(
    restoreCall(recoveringCluster({ imageName: null, statusImage: 'ghcr.io/cloudnative-pg/postgresql:17.2-system-trixie', recoveryTarget: { targetTime: between } })),
    /status\.image ghcr\.io\/cloudnative-pg\/postgresql:17\.2-system-trixie is PostgreSQL 17, but backup \S+ was taken from PostgreSQL 15/,
  );
});

test('pre-check: a Cluster that names no image version cannot be checked and is refused', async () => {
  await expectRefused(
    restoreCall(recoveringCluster({ imageName: 'registry.example/postgresql@sha256:' + '0'.repeat(64), recoveryTarget: { targetTime: between } })),
    /does not say which PostgreSQL major version its recovery Job runs.*hint: set spec\.imageName/s,
  );
});

test('Restore to a time between two batches: restore_config, then PostgreSQL 15 stops exactly there and promotes', async () => {
  const cluster = recoveringCluster({ imageCatalogMajor: 15, recoveryTarget: { targetTime: between } });
  const r = await restoreCall(cluster);
  assert.deepEqual(r.envs, []);
  const lines = (r.restoreConfig as string).trim().split('\n');
  assert.deepEqual(lines.slice(0, 2), ["recovery_target_action = 'promote'", "restore_command = '/controller/manager wal-restore --log-destination /controller/log/postgres.json %f %p'"]);
  assert.ok(lines.includes(`recovery_target_time = '${between.slice(0, 10)} ${between.slice(11, 23)}000+00:00'`), r.restoreConfig);
  assert.ok(lines.includes("recovery_target_inclusive = 'true'"), r.restoreConfig);
  assert.ok(existsSync(join(pgdata, 'PG_VERSION')) && existsSync(join(pgdata, 'backup_label')), 'the backup is in PGDATA');

  // CNPG's instance manager writes restore_config into the configuration and relays restore_command to WAL.Restore.
  const files = writeClusterFiles(join(dir.path, 'restore-job'), cluster, {});
  const relay = walCommand('restore', restoreSidecar.socket, files);
  appendFileSync(join(pgdata, 'postgresql.conf'), `\n${(r.restoreConfig as string).replace(/^restore_command = .*$/m, `restore_command = '${relay}'`)}`);
  const server = await startRestored(15, pgdata, relay);
  try {
    const rows = await server.query<{ batch: number; n: string }>('SELECT batch, count(*)::text AS n FROM rows GROUP BY batch ORDER BY batch');
    assert.deepEqual(rows, [{ batch: 1, n: '5' }], server.log().slice(-3000));
    const [state] = await server.query<{ rec: boolean; wal: string }>('SELECT pg_is_in_recovery() AS rec, pg_walfile_name(pg_current_wal_lsn()) AS wal');
    assert.equal(state.rec, false, 'promoted');
    assert.equal(state.wal.slice(0, 8), '00000002', 'writing on the new timeline');
    assert.match(server.log(), /recovery stopping before commit of transaction/);
  } finally {
    await server.stop();
  }
});
