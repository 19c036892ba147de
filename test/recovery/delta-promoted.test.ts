/**
 * `pgark restore --delta` over a data directory that an earlier `restore --start` recovered and
 * promoted (then stopped), as pgBackRest users re-restore with --delta: real PostgreSQL 15, a
 * file:// store. The delta must leave the directory as a full restore would, so the server
 * replays the backup's WAL again, promotes and holds the backup's rows, not the rows written
 * after the first promotion. It failed with "could not locate required checkpoint record" while
 * the ranged delta kept the promoted pg_control (timeline 2), whose CRC-32C equals the backup's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { crc32c } from '@node-rs/crc32';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { freePort } from '../harness/ports.js';
import { findPgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStop, serverIdentity } from '../../src/pg/local-server.js';
import { selfCheckedCrcs } from '../../src/recovery/delta-ranged.js';
import { stopWalDaemon } from '../wal/helpers.js';
import { archiveCurrentWal, backupOrigin, insertBatch, pgark, recoveryManifest, startOrigin, type Origin } from './helpers.js';

let store: TestStore;
let origin: Origin;
const work = scratchDir('delta-promoted');
const pgdata = join(work.path, 'data');
const manifest = join(work.path, 'recovery.yaml');
let port = 0;

async function stopServer(): Promise<void> {
  if (existsSync(join(pgdata, 'postmaster.pid'))) await pgCtlStop(findPgBinaries(15), pgdata, serverIdentity(), 'fast');
  await stopWalDaemon(pgdata);
}

async function query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

const batches = async () => (await query<{ batch: number }>('SELECT DISTINCT batch FROM rows ORDER BY batch')).map((r) => r.batch);

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: 'pg', major: 15 });
  await insertBatch(origin.pg, 1);
  await origin.pg.query('CHECKPOINT');
  await backupOrigin(origin, ['--compression', 'zstd']);
  await insertBatch(origin.pg, 2);
  await archiveCurrentWal(origin.pg);
  writeFileSync(manifest, recoveryManifest(store, { name: 'pg-again', sourceName: 'pg', noBackup: true }));
  port = await freePort();
});

after(async () => {
  await stopServer().catch(() => undefined);
  await origin?.pg.destroy();
  await store?.stop();
  work.cleanup();
});

const restoreArgs = (...extra: string[]) => ['restore', '-f', manifest, '--pgdata', pgdata, '--pghost', '127.0.0.1', '--pgport', String(port), '--json', ...extra];

test('restore --delta --start over a directory a previous restore --start promoted replays the backup again and promotes with its rows', async () => {
  const first = await pgark(restoreArgs('--start'));
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(await batches(), [1, 2]);
  // Written on the promoted timeline: a re-restore must not keep them.
  await query('INSERT INTO rows (batch) SELECT 99 FROM generate_series(1, 3)');
  await query('CHECKPOINT');
  await stopServer();
  // The cause of the failure this guards: the promoted pg_control differs from the origin's (as
  // from the backup's) yet has the same whole-file CRC-32C, the value the member index records.
  const promoted = readFileSync(join(pgdata, 'global', 'pg_control'));
  const live = readFileSync(join(origin.pg.pgdata, 'global', 'pg_control'));
  assert.notDeepEqual(promoted, live);
  assert.equal(crc32c(promoted), crc32c(live));
  assert.ok(selfCheckedCrcs().has(crc32c(promoted) >>> 0), 'a CRC-32C that every pg_control has is not trusted to tell files apart');

  const again = await pgark(restoreArgs('--delta', '--start'));
  assert.equal(again.code, 0, again.stderr);
  const out = JSON.parse(again.stdout);
  assert.equal(out.download.delta.rangedObjects, 1, 'the zstd tar was read by ranges, where the CRC-32C decides');
  assert.ok(out.download.delta.kept > 0, 'the delta kept files that were equal');
  assert.equal(out.download.verification.manifest, true);
  assert.deepEqual(await batches(), [1, 2], 'the backup and its WAL, without the rows written after the first promotion');
  const [{ tli }] = await query<{ tli: number }>('SELECT timeline_id AS tli FROM pg_control_checkpoint()');
  assert.ok(tli >= 2, `promoted again (timeline ${tli})`);
  await stopServer();
});
