/**
 * The seed's "Recovery from cluster backup" (bootstrap.recovery.backup.name): the backup is found
 * by its backup_name, either through the Backup manifest and its Cluster's manifest (as CNPG reads
 * the Backup CR), or in the recovering Cluster's own store under another serverName.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from './helpers.js';

const BACKUP_NAME = 'grafana-pg-backup-20240501000000';
let store: TestStore;
let origin: Origin;
let originManifest: string;
const work = scratchDir('backup-name');
const recovered: Recovered[] = [];

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: 'grafana-pg' });
  await backupOrigin(origin, ['--name', BACKUP_NAME]);
  await insertBatch(origin.pg, 1);
  await backupOrigin(origin, ['--name', 'a-later-backup']);
  await insertBatch(origin.pg, 2);
  await archiveCurrentWal(origin.pg);
  originManifest = join(work.path, 'grafana-pg.yaml');
  copyFileSync(origin.manifest, originManifest);
  await origin.pg.destroy();
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await store?.stop();
  work.cleanup();
});

test("the seed manifest with the Backup and its Cluster's manifests: the named backup, then all archived WAL", async () => {
  const backupCr = join(work.path, 'backup.yaml');
  writeFileSync(backupCr, stringify({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Backup', metadata: { name: BACKUP_NAME }, spec: { cluster: { name: 'grafana-pg' } } }));
  const seed = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'manifests', 'seed', 'recovery-from-backup.yaml'), 'utf8');
  const { result, recovered: r } = await restore(seed, ['--start', '-f', backupCr, '-f', originManifest]);
  recovered.push(r);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, new RegExp(`recovery\\.backup\\.name "${BACKUP_NAME}" is its backup_name`));
  assert.match(result.stderr, /WAL to replay: 000000010000000000000002 \.\./, 'replay starts at the named (first) backup, not the later one');
  assert.deepEqual(await batches(r), [1, 2]);
  const [s] = await r.query<{ mode: string }>("SELECT current_setting('archive_mode') AS mode");
  assert.equal(s.mode, 'off', 'no backup section in the seed manifest: no archiving after promotion');
});

test("only the Cluster's own store: the backup is found under the old serverName, WAL served from there", async () => {
  const { result, recovered: r } = await restore(
    recoveryManifest(store, { name: 'grafana-pg-v2', sourceName: 'unused', backupName: BACKUP_NAME, recoveryTarget: { targetTLI: 'latest' } }),
    ['--start'],
  );
  recovered.push(r);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /server "grafana-pg"/);
  assert.deepEqual(await batches(r), [1, 2]);
  assert.ok(!existsSync(join(r.pgdata, 'pgark-recovery-source.yaml')), 'generated source manifest removed at the end of recovery');
  const [s] = await r.query<{ ac: string }>("SELECT current_setting('archive_command') AS ac");
  assert.match(s.ac, /wal-archive/);
});

test('an unknown backup name lists the backups that exist', async () => {
  const file = join(work.path, 'unknown.yaml');
  writeFileSync(file, recoveryManifest(store, { name: 'grafana-pg-v3', sourceName: 'unused', backupName: 'no-such-backup' }));
  const r = await pgark(['restore', '-f', file, '--pgdata', join(work.path, 'unknown-data'), '--dry-run']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no backup named "no-such-backup"/);
  assert.match(r.stderr, new RegExp(BACKUP_NAME));
});
