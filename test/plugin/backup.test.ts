/**
 * The plugin's Backup service as CNPG's instance manager drives it: a real PostgreSQL 15 archiving
 * through the plugin's WAL.Archive (the archive_command relay standing in for /controller/manager),
 * `pgark plugin serve --role instance` as its own process under the server's OS user, and
 * Backup.Backup called with the Cluster and Backup CR JSON from the test client built on the
 * upstream protos. The sidecar is told the connection by --pghost/--pgport/--pguser/--pgdata, its
 * PG* variables pointing nowhere (the flags win). Every BackupResult field is checked against the server and against what real
 * barman-cloud 3.4 reads from the store; barman-cloud-restore plus WAL.Restore recover it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { mkdirForServer, serverIdentity } from '../../src/pg/local-server.js';
import type { PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterJson, pluginCluster } from '../harness/cnpg-client.js';
import { createTestData, run, startRestored, storeCatalog, tableChecksum } from '../backup/helpers.js';
import { writeStoreManifests } from './helpers.js';
import { PLUGIN_NAME, startPluginArchivedServer, walCommand, type PluginArchivedServer, type Sidecar } from './sidecar-process.js';
import { archiveCurrentWal } from '../recovery/helpers.js';

const BACKUP = 'cnpgi.backup.v1.Backup';
const CLUSTER = 'cluster-example';
const POD = 'cluster-example-1';

let store: TestStore;
let dir: { path: string; cleanup(): void };
let pg: PgServer;
let sidecar: Sidecar;
let cluster: object;
let files: PluginArchivedServer['files'];

function backupCr(name: string, spec: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Backup',
      metadata: { name, namespace: 'default', uid: '2b0c5e9e-0000-4000-8000-000000000001', resourceVersion: '4711' },
      spec: { cluster: { name: CLUSTER }, method: 'plugin', pluginConfiguration: { name: PLUGIN_NAME }, ...spec },
      status: { phase: 'started' },
    }),
  );
}

function callBackup(name: string, spec: Record<string, unknown> = {}, parameters: Record<string, string> = {}) {
  return sidecar.client.call(BACKUP, 'Backup', { clusterDefinition: clusterJson(cluster), backupDefinition: backupCr(name, spec), parameters });
}

before(async () => {
  store = await startStore('s3');
  dir = scratchDir('plugin-backup');
  const objectStores = writeStoreManifests(dir.path, store, 'store', { configuration: { data: { compression: 'gzip', jobs: 2 } } });
  cluster = pluginCluster({ name: CLUSTER, namespace: 'default', pluginName: PLUGIN_NAME, barmanObjectName: 'store', spec: { imageName: 'ghcr.io/cloudnative-pg/postgresql:15.8' } });
  // POD_NAME comes with the postgres container's environment in CNPG.
  ({ pg, sidecar, files } = await startPluginArchivedServer({ dir: dir.path, manifests: [objectStores], cluster, parameters: { barmanObjectName: 'store' }, env: { POD_NAME: POD }, pgFlags: true }));
  await createTestData(pg, 20000);
});

after(async () => {
  await sidecar?.stop();
  await pg?.destroy();
  await store?.stop();
  dir?.cleanup();
});

let backupId: string;

test('Backup.Backup: every BackupResult field agrees with the server, and barman-cloud lists the backup DONE', async () => {
  const t0 = Math.floor(Date.now() / 1000);
  const r = await callBackup('backup-example', { onlineConfiguration: { immediateCheckpoint: true, waitForArchive: true } });
  const t1 = Math.ceil(Date.now() / 1000);
  backupId = r.backupId;
  assert.match(r.backupId, /^\d{8}T\d{6}$/);
  assert.equal(r.backupName, 'backup-example');
  assert.ok(t0 <= r.startedAt && r.startedAt <= r.stoppedAt && r.stoppedAt <= t1, `times ${r.startedAt}..${r.stoppedAt} within ${t0}..${t1}`);

  const label = Buffer.from(r.backupLabelFile).toString('utf8');
  assert.match(label, new RegExp(`^START WAL LOCATION: ${r.beginLsn} \\(file ${r.beginWal}\\)$`, 'm'));
  assert.match(label, new RegExp(`^LABEL: pgark backup cloud ${r.backupId}$`, 'm'));
  assert.match(label, /^START TIMELINE: 1$/m);
  assert.match(label, /^BACKUP FROM: primary$/m);
  assert.equal(Buffer.from(r.tablespaceMapFile).length, 0, 'no tablespaces, so an empty tablespace_map');

  const [server] = await pg.query<{ begin_wal: string; span: string; ahead: string; sysid: string }>(
    `SELECT pg_walfile_name($1::pg_lsn) AS begin_wal, pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS span,
            pg_wal_lsn_diff(pg_current_wal_lsn(), $2::pg_lsn)::text AS ahead,
            (SELECT system_identifier::text FROM pg_control_system()) AS sysid`,
    [r.beginLsn, r.endLsn],
  );
  assert.equal(r.beginWal, server.begin_wal);
  assert.ok(Number(server.span) > 0, 'end LSN after begin LSN');
  assert.ok(Number(server.ahead) >= 0, 'end LSN not beyond what the server has written');
  assert.equal(r.instanceId, `${POD}/${server.sysid}`);
  assert.equal(r.online, true);

  const version = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
  assert.equal(r.metadata['pgark:version'], version);
  assert.equal(r.metadata['pgark:backup-name'], 'backup-example');
  assert.equal(r.metadata['pgark:compression'], 'gzip', 'data.compression of the ObjectStore');
  assert.equal(r.metadata['pgark:system-identifier'], server.sysid);
  assert.equal(r.metadata['pgark:server-name'], CLUSTER);
  assert.ok(Number(r.metadata['pgark:stored-bytes']) > 0);

  const barman = store.barman!;
  const list = await run('barman-cloud-backup-list', [...barman.args, '--format', 'json', store.destinationPath, CLUSTER], barman.env);
  assert.equal(list.code, 0, list.stderr);
  const listed = (JSON.parse(list.stdout).backups_list as Record<string, unknown>[]).find((b) => b.backup_id === r.backupId);
  assert.equal(listed?.status, 'DONE');
  const show = await run('barman-cloud-backup-show', [...barman.args, '--format', 'json', store.destinationPath, CLUSTER, r.backupId], barman.env);
  assert.equal(show.code, 0, show.stderr);
  const info = JSON.parse(show.stdout).cloud as Record<string, string>;
  assert.equal(info.backup_name, 'backup-example');
  assert.equal(info.begin_wal, r.beginWal);
  assert.equal(info.end_wal, r.endWal);
  assert.equal(info.begin_xlog, r.beginLsn);
  assert.equal(info.end_xlog, r.endLsn);
  assert.equal(Math.floor(Date.parse(info.end_time) / 1000), r.stoppedAt);
  assert.equal(Math.floor(Date.parse(info.begin_time) / 1000), r.startedAt);
});

test('barman-cloud-restore, then WAL.Restore through the plugin: the recovered server has the same data', async () => {
  assert.ok(backupId, 'the backup of the previous test');
  await pg.query("INSERT INTO t SELECT g, md5(g::text) || 'after' FROM generate_series(20001, 21000) g");
  await archiveCurrentWal(pg);
  const expected = await tableChecksum(pg);
  const dest = join(dir.path, 'restored');
  const barman = store.barman!;
  const restore = await run('barman-cloud-restore', [...barman.args, store.destinationPath, CLUSTER, backupId, dest], barman.env);
  assert.equal(restore.code, 0, restore.stderr);
  const restored = await startRestored(15, dest, walCommand('restore', sidecar.socket, files));
  try {
    const got = await restored.query<{ count: string; md5: string }>(
      "SELECT count(*)::text AS count, md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) AS md5 FROM t",
    );
    assert.deepEqual({ count: Number(got[0].count), md5: got[0].md5 }, expected, restored.log().slice(-2000));
    assert.equal(expected.count, 21000, 'rows written after the backup came through WAL.Restore');
  } finally {
    await restored.stop();
  }
});

test('refused Backup calls: the gRPC code and pgark\'s explanation, and no backup written', async () => {
  const before = (await storeCatalog(store, CLUSTER)).backups.length;
  const expectError = async (p: Promise<unknown>, code: status, text: RegExp) => {
    const err = (await p.then(
      () => assert.fail('the call succeeded'),
      (e: unknown) => e,
    )) as { code: number; details: string };
    assert.equal(err.code, code, err.details);
    assert.match(err.details, text);
  };
  await expectError(callBackup('offline', { online: false }), status.INVALID_ARGUMENT, /spec\.online is false: pgark takes online backups only/);
  await expectError(callBackup('bad-param', {}, { compresion: 'gzip' }), status.INVALID_ARGUMENT, /unknown parameter "compresion".*hint: a Backup accepts compression/);
  await expectError(callBackup('bad-codec', {}, { compression: 'rar' }), status.INVALID_ARGUMENT, /parameters\.compression: unknown compression "rar"/);
  await expectError(callBackup('20240101T000000'), status.INVALID_ARGUMENT, /metadata\.name: backup name "20240101T000000" looks like a backup id/);
  const wrongStore = pluginCluster({ name: CLUSTER, pluginName: PLUGIN_NAME, barmanObjectName: 'missing-store' });
  await expectError(
    sidecar.client.call(BACKUP, 'Backup', { clusterDefinition: clusterJson(wrongStore), backupDefinition: backupCr('no-store'), parameters: {} }),
    status.FAILED_PRECONDITION,
    /ObjectStore (default\/)?missing-store not found/,
  );
  assert.equal((await storeCatalog(store, CLUSTER)).backups.length, before);
});

test('with a tablespace: tablespace_map_file is the server\'s "<oid> <location>" line', async () => {
  const location = join(dir.path, 'spc one');
  mkdirForServer(location, serverIdentity());
  await pg.query(`CREATE TABLESPACE spc_one LOCATION '${location}'`);
  await pg.query('CREATE TABLE in_spc (id int) TABLESPACE spc_one; INSERT INTO in_spc SELECT generate_series(1, 100)');
  const r = await callBackup('backup-with-tablespace', { onlineConfiguration: { immediateCheckpoint: true } });
  const [spc] = await pg.query<{ oid: string; location: string }>("SELECT oid::text AS oid, pg_tablespace_location(oid) AS location FROM pg_tablespace WHERE spcname = 'spc_one'");
  assert.equal(Buffer.from(r.tablespaceMapFile).toString('utf8'), `${spc.oid} ${spc.location}\n`);
  const objects = (await storeCatalog(store, CLUSTER)).objects.get(r.backupId)!.map((o) => o.key.split('/').pop());
  assert.ok(objects.includes(`${spc.oid}.tar.gz`), `the tablespace's tar is stored: ${objects.join(', ')}`);
});

test('the sidecar process stayed within its memory bound during the backup', () => {
  const peak = sidecar.peakRss();
  // Bounded by codec blocks and upload parts (docs/backups.md), not by the database size.
  assert.ok(peak > 0 && peak < 400 * 1024 * 1024, `VmHWM ${peak} bytes`);
});
