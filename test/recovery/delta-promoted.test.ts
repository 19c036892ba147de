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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { startStore, type TestStore } from '../harness/stores.js';
import { findPgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStop, serverIdentity } from '../../src/pg/local-server.js';
import { selfCheckedCrcs } from '../../src/io/hash.js';
import { stopWalDaemon } from '../wal/helpers.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from './helpers.js';
import { CURRENT_TIMELINE_SQL } from '../../src/pg/connect.js';

let store: TestStore;
let origin: Origin;
let recovered: Recovered | undefined;

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: 'pg', major: 15 });
  await insertBatch(origin.pg, 1);
  await origin.pg.query('CHECKPOINT');
  await backupOrigin(origin, ['--compression', 'zstd']);
  await insertBatch(origin.pg, 2);
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  await recovered?.destroy();
  await origin?.pg.destroy();
  await store?.stop();
});

test('restore --delta --start over a directory a previous restore --start promoted replays the backup again and promotes with its rows', async () => {
  const first = await restore(recoveryManifest(store, { name: 'pg-again', sourceName: 'pg', noBackup: true }), ['--start', '--json']);
  const r = (recovered = first.recovered);
  assert.equal(first.result.code, 0, first.result.stderr);
  assert.deepEqual(await batches(r), [1, 2]);
  // Written on the promoted timeline: a re-restore must not keep them.
  await r.query('INSERT INTO rows (batch) SELECT 99 FROM generate_series(1, 3)');
  await r.query('CHECKPOINT');
  await pgCtlStop(findPgBinaries(15), r.pgdata, serverIdentity(), 'fast');
  await stopWalDaemon(r.pgdata);
  // The cause of the failure this guards: the promoted pg_control differs from the origin's (as
  // from the backup's) yet has the same whole-file CRC-32C, the value the member index records.
  const promoted = readFileSync(join(r.pgdata, 'global', 'pg_control'));
  const live = readFileSync(join(origin.pg.pgdata, 'global', 'pg_control'));
  assert.notDeepEqual(promoted, live);
  assert.equal(crc32c(promoted), crc32c(live));
  assert.ok(selfCheckedCrcs().has(crc32c(promoted) >>> 0), 'a CRC-32C that every pg_control has is not trusted to tell files apart');

  const again = await pgark(['restore', '-f', r.manifest, '--pgdata', r.pgdata, '--pghost', '127.0.0.1', '--pgport', String(r.port), '--json', '--delta', '--start']);
  assert.equal(again.code, 0, again.stderr);
  const out = JSON.parse(again.stdout);
  assert.equal(out.download.delta.rangedObjects, 1, 'the zstd tar was read by ranges, where the CRC-32C decides');
  assert.ok(out.download.delta.kept > 0, 'the delta kept files that were equal');
  assert.equal(out.download.verification.manifest, true);
  // No object was read whole, so none had its SHA-256 checked: the progress must not say "all 0 verified".
  assert.equal(out.download.objects.objects, 0);
  assert.match(again.stderr, /stored objects not read whole \(every tar was read by ranges\)/);
  assert.doesNotMatch(again.stderr, /verified: all 0 stored object/);
  assert.deepEqual(await batches(r), [1, 2], 'the backup and its WAL, without the rows written after the first promotion');
  const [{ tli }] = await r.query<{ tli: number }>(`SELECT ${CURRENT_TIMELINE_SQL} AS tli`);
  assert.ok(tli >= 2, `promoted again (timeline ${tli})`);
});
