/**
 * `pgark restore --start` with no recovery target runs the server in standby mode and promotes it
 * itself (src/recovery/apply.ts, promotedByPgark): all archived WAL is replayed, the promotion ends
 * with an end-of-recovery record instead of the immediate checkpoint archive recovery waits for, and
 * what the restored configuration would make a recovery do (wait out an apply delay, stream from a
 * primary) is neutralized during the recovery and gone after it; recovery_end_command is answered by
 * the restore itself (finish-handoff.ts). A promotion request PostgreSQL never got (pg_ctl can send
 * one too early for a backup of a standby) is sent again. Real PostgreSQL and a real file store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTO_CONF, RECOVERY_SIGNAL, STANDBY_SIGNAL } from '../../src/recovery/settings.js';
import { followRecovery, requestPromotion } from '../../src/recovery/server.js';
import { RECOVERY_LOG } from '../../src/util/cnpg.js';
import { withinDeadline } from '../harness/deadline.js';
import { startPostgres } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from './helpers.js';

const SERVER = 'promote';
let store: TestStore;
let origin: Origin;
/** Where batch 2 ends: archived, and before batch 3. */
let targetLsn: string;

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: SERVER });
  // Inert on a primary, and carried into its base backups: a recovery would wait an hour before
  // applying each commit, and a standby would try to stream from port 1. The delay goes into
  // postgresql.conf, which pgark leaves as restored (its own settings win from postgresql.auto.conf).
  appendFileSync(join(origin.pg.pgdata, 'postgresql.conf'), "\nrecovery_min_apply_delay = '1h'\n");
  await origin.pg.query("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'");
  await origin.pg.query("ALTER SYSTEM SET primary_slot_name = 'nowhere'");
  await origin.pg.query('ALTER SYSTEM SET log_checkpoints = on');
  await origin.pg.query('SELECT pg_reload_conf()');
  await insertBatch(origin.pg, 1, 2000);
  await backupOrigin(origin, ['--compression', 'none']);
  await insertBatch(origin.pg, 2, 2000);
  [{ lsn: targetLsn }] = (await origin.pg.query('SELECT pg_catalog.pg_current_wal_insert_lsn()::text AS lsn')) as Array<{ lsn: string }>;
  await archiveCurrentWal(origin.pg);
  await insertBatch(origin.pg, 3, 2000);
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  await origin?.pg.destroy();
  await store?.stop();
});

test('to the end of the archive: standby mode, every archived commit replayed despite the apply delay, promoted without the end-of-recovery checkpoint or a Node start', async () => {
  const manifest = recoveryManifest(store, { name: 'promoted', sourceName: SERVER, noBackup: true });
  // debug: bin/pgark says in the server log when pgark restore finished the recovery for it.
  const { result, recovered } = await restore(manifest, ['--start'], ['env', 'PGARK_LOG_LEVEL=debug']);
  try {
    assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}`);
    assert.deepEqual(await batches(recovered), [1, 2, 3], 'the commits after the backup are there: no apply delay, nothing short of the archive');
    assert.deepEqual(await recovered.query('SELECT pg_catalog.pg_is_in_recovery() AS r'), [{ r: false }]);
    const log = readFileSync(join(recovered.pgdata, RECOVERY_LOG), 'utf8');
    assert.match(log, /entering standby mode/);
    assert.match(log, /received promote request/);
    assert.doesNotMatch(log, /could not connect to the primary server|started streaming WAL/, 'no primary was tried');
    const promotedAt = log.search(/selected new timeline ID/);
    const readyAt = log.indexOf('database system is ready to accept connections', promotedAt);
    assert.ok(promotedAt >= 0 && readyAt > promotedAt, 'promoted, then ready');
    assert.doesNotMatch(log.slice(promotedAt, readyAt), /checkpoint starting: end-of-recovery/, 'no end-of-recovery checkpoint between the promotion and the first write it allows');
    assert.match(log.slice(promotedAt, readyAt), /pgark restore --finish-recovery: finished by pgark restore without Node in \d+ ms \(exit 0\)/, 'recovery_end_command handed to the restore (finish-handoff.ts)');
    assert.equal(existsSync(join(recovered.pgdata, 'pgark-wal', 'finish')), false, 'the hand-off directory is gone');
    // After the promotion nothing of the recovery stays: a later standby of this data directory must not inherit ''.
    assert.equal(existsSync(join(recovered.pgdata, STANDBY_SIGNAL)), false);
    assert.equal(existsSync(join(recovered.pgdata, RECOVERY_SIGNAL)), false);
    const auto = readFileSync(join(recovered.pgdata, AUTO_CONF), 'utf8');
    assert.doesNotMatch(auto, /^\s*(primary_conninfo|primary_slot_name|recovery_min_apply_delay|restore_command|recovery_target\w*)\s*=/m, auto);
  } finally {
    await recovered.destroy();
  }
});

test('with a recovery target: archive recovery (which checks that replay reached the target), the apply delay neutralized there too', async () => {
  const manifest = recoveryManifest(store, { name: 'targeted', sourceName: SERVER, noBackup: true, recoveryTarget: { targetLSN: targetLsn } });
  const { result, recovered } = await restore(manifest, ['--start']);
  try {
    assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}${result.stdout}`);
    const log = readFileSync(join(recovered.pgdata, RECOVERY_LOG), 'utf8');
    assert.deepEqual(await batches(recovered), [1, 2]);
    assert.match(log, /starting point-in-time recovery to WAL location/);
    assert.doesNotMatch(log, /entering standby mode/);
  } finally {
    await recovered.destroy();
  }
});

test('a promotion request PostgreSQL never got is sent again until it logs that it received it', async () => {
  // A server in standby mode with nowhere to read WAL from stays in recovery until it is promoted.
  // max_wal_senders as initdb left it in pg_control: a hot standby may not run with less.
  const server = await startPostgres({ noStart: true, settings: { max_wal_senders: 10 } });
  try {
    writeFileSync(join(server.pgdata, STANDBY_SIGNAL), '');
    const from = existsSync(server.logFile) ? statSync(server.logFile).size : 0;
    await server.start();
    let calls = 0;
    // The first request is lost, as one pg_ctl sends before the postmaster has a startup process is lost.
    const promote = async () => (++calls === 1 ? { sent: true, why: '' } : requestPromotion(server.bin, server.pgdata, server.who));
    const followed = followRecovery(server.pgdata, { path: server.logFile, from }, { step: () => undefined }, 'the end of WAL', 'postgres', undefined, { promote });
    const outcome = await withinDeadline(followed, 20_000, () => `not promoted within 20 s; server log:\n${server.log()}`);
    assert.equal(outcome.newTimeline, 2);
    assert.ok(calls >= 2, `promote was called ${calls} time(s)`);
    assert.match(server.log().slice(from), /received promote request/);
    assert.deepEqual(await server.query('SELECT pg_catalog.pg_is_in_recovery() AS r'), [{ r: false }]);
    assert.equal(existsSync(join(server.pgdata, 'promote')), false, 'no promote file left behind');
  } finally {
    await server.destroy();
  }
});
