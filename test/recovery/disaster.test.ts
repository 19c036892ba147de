/**
 * Disaster recovery with the seed's manifests (test/fixtures/manifests/seed/recovery-*.yaml, the
 * endpoints pointed at s3rver / Azurite) after the original data directory is deleted; then the
 * recovered cluster archives to its new serverName, is backed up, and is itself recovered.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { openObjectStore } from '../../src/storage/open.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupCluster, backupOrigin, insertBatch, recoveryManifest, restore, startOrigin, type Recovered } from './helpers.js';
import { CURRENT_TIMELINE_SQL } from '../../src/pg/connect.js';

const SEED = join(PACKAGE_ROOT, 'test', 'fixtures', 'manifests', 'seed');
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function walKeys(store: TestStore, serverName: string): Promise<string[]> {
  const s = await openObjectStore(store.resolved(serverName));
  try {
    const keys: string[] = [];
    for await (const e of s.list(`${serverName}/wals/`)) if (e.object) keys.push(e.object.key);
    return keys;
  } finally {
    await s.close();
  }
}

/** Origin with an application database "oncall" owned by "oncall", one batch written after the backup. */
async function originWithAppDb(store: TestStore, clusterName: string) {
  const origin = await startOrigin(store, { clusterName });
  await origin.pg.query('CREATE ROLE oncall LOGIN');
  await origin.pg.query('CREATE DATABASE oncall OWNER oncall');
  await backupOrigin(origin);
  await insertBatch(origin.pg, 1);
  await archiveCurrentWal(origin.pg);
  // The disaster: the server and its data directory are gone.
  await origin.pg.destroy();
  return origin;
}

async function recovered(manifest: string): Promise<Recovered> {
  const { result, recovered: r } = await restore(manifest, ['--start']);
  cleanup.push(() => r.destroy());
  assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}`);
  return r;
}

test('S3: the seed manifest recovers the deleted cluster; the new cluster archives to its new serverName and is backed up and recovered again', async () => {
  const store = await startStore('s3');
  cleanup.push(() => store.stop());
  await originWithAppDb(store, 'oncall-pgsql-old');

  const seed = readFileSync(join(SEED, 'recovery-s3.yaml'), 'utf8')
    .replaceAll('s3://your-backup-bucket-name', store.destinationPath)
    .replaceAll('https://s3.your-provider.com', store.endpointURL!);
  const v2 = await recovered(seed);
  assert.deepEqual((await v2.query('SELECT DISTINCT batch FROM rows')).map((r) => r.batch), [1]);
  const [db] = await v2.query<{ owner: string }>("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'oncall'");
  assert.equal(db.owner, 'oncall');

  // Archiving goes to the new serverName from the seed (oncall-pgsql-v2), not to the old one.
  await insertBatch(v2, 2);
  await archiveCurrentWal(v2);
  const [{ wal }] = await v2.query<{ wal: string }>('SELECT last_archived_wal AS wal FROM pg_stat_archiver');
  const v2Wal = await walKeys(store, 'oncall-pgsql-v2');
  assert.ok(v2Wal.some((k) => k.endsWith('00000002.history')), `timeline 2 history archived under oncall-pgsql-v2: ${v2Wal}`);
  assert.ok(v2Wal.some((k) => k.includes(`/${wal}`)), `${wal} archived under oncall-pgsql-v2`);
  assert.ok(!(await walKeys(store, 'oncall-pgsql-old')).some((k) => /\/00000002/.test(k)), 'nothing of timeline 2 in the old folder');

  // The recovered cluster can itself be backed up and recovered.
  const env = { PGHOST: '127.0.0.1', PGPORT: String(v2.port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  await backupCluster(v2.manifest, v2.pgdata, env);
  await insertBatch(v2, 3);
  await archiveCurrentWal(v2);
  const v3 = await recovered(recoveryManifest(store, { name: 'oncall-pgsql-v3', sourceName: 'oncall-pgsql-v2', database: 'oncall', owner: 'oncall' }));
  assert.deepEqual((await v3.query('SELECT DISTINCT batch FROM rows ORDER BY batch')).map((r) => r.batch), [1, 2, 3]);
  const [tl] = await v3.query<{ tli: number }>(`SELECT ${CURRENT_TIMELINE_SQL} AS tli`);
  assert.equal(tl.tli, 3);
});

test('Azure: the seed manifest recovers the deleted cluster from Azurite', async () => {
  const store = await startStore('azure-connection-string');
  cleanup.push(() => store.stop());
  await originWithAppDb(store, 'your-original-cluster-name');
  const seed = readFileSync(join(SEED, 'recovery-azure.yaml'), 'utf8')
    .replace('https://youraccount.blob.core.windows.net/backups', store.destinationPath)
    .replace(/AZURE_CONNECTION_STRING: .*/, `AZURE_CONNECTION_STRING: "${store.secretValues.AZURE_CONNECTION_STRING}"`);
  const r = await recovered(seed);
  assert.deepEqual((await r.query('SELECT DISTINCT batch FROM rows')).map((x) => x.batch), [1]);
  const [s] = await r.query<{ rec: boolean; mode: string }>("SELECT pg_is_in_recovery() AS rec, current_setting('archive_mode') AS mode");
  assert.equal(s.rec, false);
  assert.equal(s.mode, 'off', 'the seed Azure manifest has no backup section: no archiving after promotion');
});
