/**
 * pgark restores its own multi-part backups (data.tar.zst, data_0001.tar.zst, data_0002.tar.zst,
 * written at once by a local backup with --jobs 3; PGARK_BACKUP_PART_MIN of 1 MB stands in for
 * the 256 MiB minimum so that a small cluster splits) on real PostgreSQL 15 and s3rver: every
 * part's SHA-256 and every file of backup_manifest are checked and the server starts with the
 * rows; then a --delta restore to a later multi-part backup reads each part by ranges from its
 * member index and starts with the later rows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { freePort } from '../harness/ports.js';
import { findPgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStop, serverIdentity } from '../../src/pg/local-server.js';
import { stopWalDaemon } from '../wal/helpers.js';
import { archiveCurrentWal, backupCluster, insertBatch, pgark, recoveryManifest, startOrigin, type Origin } from './helpers.js';

let store: TestStore;
let origin: Origin;
const work = scratchDir('parts');
const pgdata = join(work.path, 'data');
/** The --delta test's directory: restored from the first backup without starting (as delta.test.ts does). */
const older = join(work.path, 'older');
const manifest = join(work.path, 'recovery.yaml');
let port = 0;

const PARTS = ['data.tar.zst', 'data_0001.tar.zst', 'data_0002.tar.zst'];

function backupInParts(): Promise<string> {
  return backupCluster(origin.manifest, origin.pg.pgdata, { ...origin.pg.env, PGARK_BACKUP_PART_MIN: '1000000' }, ['--compression', 'zstd', '--jobs', '3']);
}

/** Stops the recovered server and the WAL daemon its `restore --start` left. */
async function stopServer(dir = pgdata): Promise<void> {
  if (existsSync(join(dir, 'postmaster.pid'))) await pgCtlStop(findPgBinaries(15), dir, serverIdentity(), 'fast');
  await stopWalDaemon(dir);
}

async function batches(): Promise<number[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query<{ batch: number }>('SELECT DISTINCT batch FROM rows ORDER BY batch')).rows.map((r) => r.batch);
  } finally {
    await c.end();
  }
}

const names = (objects: { key: string }[]) => objects.map((o) => o.key.slice(o.key.lastIndexOf('/') + 1)).sort();

before(async () => {
  store = await startStore('s3');
  origin = await startOrigin(store, { clusterName: 'pg', major: 15 });
  await origin.pg.query('CREATE TABLE filler (id int, payload text); INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, 50000) g');
  await insertBatch(origin.pg, 1);
  await origin.pg.query('CHECKPOINT');
  await backupInParts();
  writeFileSync(manifest, recoveryManifest(store, { name: 'pg-parts', sourceName: 'pg', noBackup: true }));
  port = await freePort();
});

after(async () => {
  await stopServer().catch(() => undefined);
  await stopServer(older).catch(() => undefined);
  await origin?.pg.destroy();
  await store?.stop();
  work.cleanup();
});

const restoreArgs = (dir: string, ...extra: string[]) => ['restore', '-f', manifest, '--pgdata', dir, '--pghost', '127.0.0.1', '--pgport', String(port), '--json', ...extra];

test('a backup in three parts is restored with every part and every file verified, and starts with its rows', async () => {
  await archiveCurrentWal(origin.pg);
  const r = await pgark(restoreArgs(pgdata, '--start'));
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(names(out.plan.backup.objects), PARTS);
  assert.deepEqual(out.download.objects, { digests: true, objects: 3 });
  assert.equal(out.download.verification.manifest, true);
  assert.ok(out.download.verification.files > 500, `every file verified (${out.download.verification.files})`);
  assert.deepEqual(await batches(), [1]);
  await stopServer();
});

test('--delta to a later backup in parts reads every part by ranges and starts with the later rows', async () => {
  const base = await pgark(restoreArgs(older));
  assert.equal(base.code, 0, base.stderr);
  await insertBatch(origin.pg, 2);
  await origin.pg.query('CHECKPOINT');
  await backupInParts();
  await archiveCurrentWal(origin.pg);
  const r = await pgark(restoreArgs(older, '--delta', '--start'));
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(names(out.plan.backup.objects), PARTS);
  assert.deepEqual([out.download.delta.rangedObjects, out.download.delta.streamed], [3, []], 'each part read through its member index');
  assert.equal(out.download.verification.manifest, true);
  assert.deepEqual(await batches(), [1, 2]);
  await stopServer(older);
});
