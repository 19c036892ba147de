/**
 * A backup directory without backup.info is RUNNING while its claim is refreshed and INCOMPLETE
 * once the claim has gone stale: the catalog tells them apart, deletion refuses a running one,
 * and retention keeps WAL a running backup may need. Real stores (file://, s3rver); the clock
 * is passed explicitly (`now`) so staleness needs no waiting.
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { claimBackupId } from '../../src/backup/claim.js';
import { CLAIM_STALE_PERIODS, claimState } from '../../src/catalog/claims.js';
import { deleteBackup, listBackups } from '../../src/catalog/catalog.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import { planFromCatalog, planBackupDeletion, planRetention, type WalObject } from '../../src/catalog/retention.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { UserError } from '../../src/util/errors.js';
import { startStore, type StoreKind } from '../harness/stores.js';
import { allKeys, DAY, segments, syntheticInfo, type SyntheticBackup } from './synthetic.js';

const SERVER = 'pg';

test('claimState: live until six heartbeat periods after the newer of lastModified and the writer time', () => {
  const t = Date.UTC(2024, 0, 1);
  const text = JSON.stringify({ host: 'h', pid: 7, claimedAt: new Date(t - 60_000).toISOString(), refreshedAt: new Date(t).toISOString(), heartbeatSeconds: 5 });
  const period = CLAIM_STALE_PERIODS * 5_000;
  assert.equal(claimState(text, new Date(t - 1000), new Date(t + period)).live, true);
  assert.equal(claimState(text, new Date(t - 1000), new Date(t + period + 1)).live, false);
  // The store saw a later write than the writer's clock says: the later one counts.
  assert.equal(claimState(text, new Date(t + 10_000), new Date(t + period + 1)).live, true);
  const s = claimState(text, undefined, new Date(t));
  assert.deepEqual([s.host, s.pid, s.heartbeatSeconds, s.staleAt?.getTime()], ['h', 7, 5, t + period]);
  // A claim from before heartbeats (or garbled) gets the default period from its lastModified.
  const old = claimState('not json', new Date(t), new Date(t + CLAIM_STALE_PERIODS * 10_000 + 1));
  assert.deepEqual([old.heartbeatSeconds, old.live], [10, false]);
  assert.equal(claimState(JSON.stringify({ heartbeatSeconds: 0 }), new Date(t), new Date(t)).heartbeatSeconds, 10);
  // Nothing to date it by: never taken for stale.
  assert.equal(claimState(undefined, undefined, new Date(t + 365 * DAY)).live, true);
});

/** A running backup's folder as its claim leaves it: the claim plus a tar, written now. */
async function runningFolder(store: ObjectStore, id: string, heartbeatSeconds = 10): Promise<{ keys: string[]; staleAt: Date }> {
  const prefix = backupPrefix(SERVER, id);
  const now = new Date();
  await store.put(`${prefix}pgark-claim-0123456789abcdef`, Buffer.from(JSON.stringify({ host: 'backup-host', pid: 4242, claimedAt: now.toISOString(), refreshedAt: now.toISOString(), heartbeatSeconds })));
  await store.put(`${prefix}data.tar`, Buffer.alloc(2048, 1));
  const keys = await allKeys(store, prefix);
  const written = Math.max(...(await listBackups(store, SERVER)).objects.get(id)!.map((o) => o.lastModified!.getTime()), now.getTime());
  return { keys, staleAt: new Date(written + CLAIM_STALE_PERIODS * heartbeatSeconds * 1000) };
}

for (const kind of ['file', 's3'] as StoreKind[]) {
  test(`catalog on ${kind}: a live claim is a running backup that delete refuses; a stale one is incomplete and deletable`, async () => {
    const ts = await startStore(kind);
    const store = await openObjectStore(ts.resolved(SERVER));
    try {
      const id = '20240601T000000';
      const { keys, staleAt } = await runningFolder(store, id);
      const live = await listBackups(store, SERVER, new Date(staleAt.getTime() - 1000));
      assert.deepEqual(live.running.map((r) => [r.backupId, r.claim.host, r.claim.pid]), [[id, 'backup-host', 4242]]);
      assert.deepEqual(live.incomplete, []);
      await assert.rejects(
        deleteBackup(store, SERVER, id, { now: new Date(staleAt.getTime() - 1000) }),
        (e: unknown) => e instanceof UserError && /backup "20240601T000000" is running \(on backup-host pid 4242, last heartbeat .*\) and is not deleted/.test(e.message) && /60 s/.test(e.hint ?? ''),
      );
      assert.throws(() => planBackupDeletion(live, [], id, []), /is running/);
      assert.deepEqual(await allKeys(store, backupPrefix(SERVER, id)), keys, 'nothing deleted');

      const later = new Date(staleAt.getTime() + 1000);
      const stale = await listBackups(store, SERVER, later);
      assert.deepEqual([stale.running, stale.incomplete], [[], [id]]);
      const r = await deleteBackup(store, SERVER, id, { now: later });
      assert.equal(r.objectsDeleted, 2);
      assert.deepEqual(await allKeys(store, backupPrefix(SERVER, id)), []);
    } finally {
      await store.close();
      await ts.stop();
    }
  });
}

test('retention keeps the WAL a running backup may need, and deletes it when the running backup is the newest', async () => {
  const ts = await startStore('file');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    const now = new Date(Date.UTC(2024, 5, 30));
    const at = (days: number) => new Date(now.getTime() - days * DAY);
    // An old obsolete backup, a running one that began before the window base, which ended before the window start.
    const done: SyntheticBackup[] = [
      { id: '20240501T000000', beginSeg: 2, endSeg: 2, endTime: at(60) },
      { id: '20240520T000000', beginSeg: 9, endSeg: 9, endTime: at(40) },
    ];
    const wals: WalObject[] = segments(1, 1, 12).map((name) => ({ key: `wals/${name}`, name, size: 1 }));
    const held = await runningFolder(store, '20240510T000000');
    const c = await listBackups(store, SERVER, new Date(held.staleAt.getTime() - 1000));
    const withRunning = planFromCatalog({ ...c, backups: done.map(syntheticInfo) }, wals, '30d', now);
    assert.deepEqual(withRunning.steps.map((s) => [s.backupId, s.walKeys.length]), [['20240501T000000', 0]], 'the running backup started within WAL the deletion would free');
    assert.ok(!withRunning.steps.some((s) => s.backupId === '20240510T000000'), 'a running backup is never deleted');

    const newest = planRetention({ serverName: SERVER, backups: done.map(syntheticInfo), running: ['20240601T000000'], wals, policy: '30d', now });
    assert.deepEqual(newest.steps[0].walKeys, segments(1, 1, 8).map((n) => `wals/${n}`));
  } finally {
    await store.close();
    await ts.stop();
  }
});

test('a claim is refreshed while held, and a backup whose claim was deleted under it cannot be committed', async () => {
  const ts = await startStore('file');
  const store = await openObjectStore(ts.resolved(SERVER));
  process.env.PGARK_CLAIM_HEARTBEAT_SECONDS = '1';
  try {
    const claim = await claimBackupId(store, SERVER);
    const [key] = await allKeys(store, backupPrefix(SERVER, claim.backupId));
    const first = JSON.parse((await store.getBuffer(key)).toString()).refreshedAt;
    let refreshed = first;
    for (let i = 0; i < 300 && refreshed === first; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refreshed = JSON.parse((await store.getBuffer(key)).toString()).refreshedAt;
    }
    assert.ok(refreshed > first, 'the heartbeat rewrote the claim');
    await claim.assertHeld();
    await store.delete([key]);
    await assert.rejects(claim.assertHeld(), /was deleted while the backup ran/);
    await claim.release();
    assert.deepEqual(await allKeys(store, backupPrefix(SERVER, claim.backupId)), [], 'the heartbeat did not bring the deleted claim back');

    process.env.PGARK_CLAIM_HEARTBEAT_SECONDS = '0.5';
    await assert.rejects(claimBackupId(store, SERVER), /PGARK_CLAIM_HEARTBEAT_SECONDS="0.5" is not a whole number/);
  } finally {
    delete process.env.PGARK_CLAIM_HEARTBEAT_SECONDS;
    await store.close();
    await ts.stop();
  }
});
