/**
 * Point-in-time recovery to every target type lands exactly, on a real PostgreSQL archiving to a
 * file:// store with pgark wal-archive and backed up with pgark backup: rows committed before the
 * target are there, rows after it are not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from './helpers.js';
import { CURRENT_TIMELINE_SQL } from '../../src/pg/connect.js';

let store: TestStore;
let origin: Origin;
let backupId: string;
const marks: { lsnAfter1?: string; xid2?: string; between2and3?: string } = {};
const recovered: Recovered[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store);
  backupId = await backupOrigin(origin);
  await insertBatch(origin.pg, 1);
  marks.lsnAfter1 = (await origin.pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))[0].lsn;
  await origin.pg.query("SELECT pg_create_restore_point('after-one')");
  await sleep(1100);
  const [x] = await origin.pg.query<{ xid: string }>('WITH i AS (INSERT INTO rows (batch) SELECT 2 FROM generate_series(1, 3) RETURNING 1) SELECT pg_current_xact_id()::text AS xid FROM i LIMIT 1');
  marks.xid2 = x.xid;
  await sleep(1100);
  marks.between2and3 = new Date().toISOString();
  await sleep(1100);
  await insertBatch(origin.pg, 3);
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await origin?.pg.destroy();
  await store?.stop();
});

async function recoverTo(name: string, recoveryTarget: Record<string, unknown> | undefined, extra: { database?: string; owner?: string } = {}): Promise<Recovered & { stdout: string }> {
  const { result, recovered: r } = await restore(recoveryManifest(store, { name, sourceName: 'origin', recoveryTarget, ...extra }), ['--start']);
  recovered.push(r);
  assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}`);
  return Object.assign(r, { stdout: result.stdout });
}

test('targetTime (RFC3339) between batches two and three: exactly batches one and two', async () => {
  const r = await recoverTo('pitr-time', { targetTime: marks.between2and3 });
  assert.deepEqual(await batches(r), [1, 2]);
  const conf = readFileSync(join(r.pgdata, 'postgresql.auto.conf'), 'utf8');
  assert.doesNotMatch(conf, /^(restore_command|recovery_end_command)\b/m, 'recovery commands removed after promotion');
  assert.match(conf, /^archive_command = '.*wal-archive/m);
});

test("targetTime in PostgreSQL's own format with a +02 offset lands at the same instant", async () => {
  const t = new Date(new Date(marks.between2and3!).getTime() + 2 * 3600_000).toISOString();
  const pgForm = `${t.slice(0, 10)} ${t.slice(11, 23)}+02`;
  const r = await recoverTo('pitr-time-pg', { targetTime: pgForm, targetTLI: 'latest' });
  assert.deepEqual(await batches(r), [1, 2]);
});

test('targetLSN right after batch one: batch one only', async () => {
  const r = await recoverTo('pitr-lsn', { targetLSN: marks.lsnAfter1 });
  assert.deepEqual(await batches(r), [1]);
});

test('targetXID of batch two, inclusive: batches one and two', async () => {
  const r = await recoverTo('pitr-xid-incl', { backupID: backupId, targetXID: marks.xid2 });
  assert.deepEqual(await batches(r), [1, 2]);
});

test('targetXID of batch two, exclusive: batch one only', async () => {
  const r = await recoverTo('pitr-xid-excl', { backupID: backupId, targetXID: marks.xid2, exclusive: true });
  assert.deepEqual(await batches(r), [1]);
});

test('targetName (restore point after batch one): batch one only', async () => {
  const r = await recoverTo('pitr-name', { backupID: backupId, targetName: 'after-one' });
  assert.deepEqual(await batches(r), [1]);
});

test('targetImmediate: the backup alone, no batch', async () => {
  const r = await recoverTo('pitr-immediate', { backupID: backupId, targetImmediate: true });
  assert.deepEqual(await batches(r), []);
});

test('no target: everything archived, promoted on a new timeline; missing owner and database created', async () => {
  const r = await recoverTo('pitr-end', undefined, { database: 'app', owner: 'app' });
  assert.deepEqual(await batches(r), [1, 2, 3]);
  const [s] = await r.query<{ rec: boolean; tli: number }>(`SELECT pg_is_in_recovery() AS rec, ${CURRENT_TIMELINE_SQL} AS tli`);
  assert.equal(s.rec, false);
  assert.ok(s.tli >= 2);
  const [db] = await r.query<{ owner: string; login: boolean }>(
    "SELECT pg_get_userbyid(d.datdba) AS owner, r.rolcanlogin AS login FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = 'app'",
  );
  assert.deepEqual(db, { owner: 'app', login: true });
  assert.match(r.stdout, /created role app \(LOGIN\); created database app owned by app/);
});

test('a target PostgreSQL never reaches fails the command with the server\'s own message', async () => {
  const { result, recovered: r } = await restore(
    recoveryManifest(store, { name: 'pitr-unreached', sourceName: 'origin', recoveryTarget: { backupID: backupId, targetXID: '4000000000' } }),
    ['--start'],
  );
  recovered.push(r);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /PostgreSQL stopped during recovery: recovery ended before configured recovery target was reached/);
  assert.match(result.stderr, /server log: .*pgark-recovery\.log/);
});
