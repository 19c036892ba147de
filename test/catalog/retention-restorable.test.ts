/**
 * Issue 6, end to end: a recovery-window policy applied with `pgark retention` on s3rver deletes
 * only the obsolete backup, and every backup it keeps is still restorable to the end of its WAL
 * (the WAL the policy kept is enough for `pgark restore` to replay to the last archived segment).
 * Three real backups of a real PostgreSQL; the two older ones are backdated in backup.info so that
 * a 7d window makes the oldest obsolete and keeps the middle one as the window's base.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { openObjectStore } from '../../src/storage/open.js';
import { backdate } from './scenarios.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import { takeBackups } from './real-backups.js';
import { batches, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from '../recovery/helpers.js';

const SERVER = 'origin';

let store: TestStore;
let origin: Origin;
let objects: ObjectStore;
const ids: { a?: string; b?: string; c?: string } = {};
let finalRows = 0;
const recovered: Recovered[] = [];

async function rowCount(q: Pick<Origin['pg'], 'query'>): Promise<number> {
  const [r] = await q.query<{ n: string }>('SELECT count(*)::text AS n FROM rows');
  return Number(r.n);
}


before(async () => {
  store = await startStore('s3');
  origin = await startOrigin(store, { clusterName: SERVER });
  objects = await openObjectStore(store.resolved(SERVER));
  [ids.a, ids.b, ids.c] = await takeBackups(origin, 3);
  finalRows = await rowCount(origin.pg);
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await origin?.pg.destroy();
  await objects?.close();
  await store?.stop();
});

test('7d policy on s3rver deletes only the backup before the window base; the kept ones stay listed', async () => {
  assert.equal(new Set([ids.a, ids.b, ids.c]).size, 3, 'three distinct backups');
  await backdate(objects, SERVER, ids.a!, 20);
  await backdate(objects, SERVER, ids.b!, 10);

  const r = await pgark(['retention', '-f', origin.manifest, '--policy', '7d', '--json']);
  assert.equal(r.code, 0, `pgark retention failed:\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as { applied: boolean; backups: { backupId: string; decision: string }[]; blockedBy: unknown[]; walFilesDeleted: number };
  assert.equal(report.applied, true);
  assert.deepEqual(report.blockedBy, []);
  // WAL older than B's start went with A, so the restores below prove the WAL the policy kept suffices.
  assert.ok(report.walFilesDeleted > 0, `WAL before the window base was pruned (${report.walFilesDeleted} files)`);
  const decisions = Object.fromEntries(report.backups.map((b) => [b.backupId, b.decision]));
  assert.deepEqual(decisions, { [ids.a!]: 'delete', [ids.b!]: 'keep', [ids.c!]: 'keep' });

  const catalog = await listBackups(objects, SERVER);
  assert.deepEqual(
    catalog.backups.map((b) => [b.backup_id, b.status]),
    [
      [ids.b, 'DONE'],
      [ids.c, 'DONE'],
    ],
  );
  const leftOfA: string[] = [];
  for await (const e of objects.list(backupPrefix(SERVER, ids.a!))) if (e.object) leftOfA.push(e.object.key);
  assert.deepEqual(leftOfA, [], 'no object of the deleted backup remains under base/');
});

for (const which of ['b', 'c'] as const) {
  test(`kept backup ${which.toUpperCase()} restores from s3rver and replays to the end of the archived WAL`, async () => {
    const backupId = ids[which]!;
    const { result, recovered: rec } = await restore(
      recoveryManifest(store, { name: `restored-${which}`, sourceName: 'origin', sourceServerName: SERVER, recoveryTarget: { backupID: backupId } }),
      ['--start'],
    );
    recovered.push(rec);
    assert.equal(result.code, 0, `pgark restore of ${backupId} failed:\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`^Backup:\\s+${backupId}: recoveryTarget\\.backupID names it`, 'm'), 'the restore used the requested backup');
    assert.match(result.stdout, /^Target:\s+end of the WAL archive/m);
    const [{ rec: inRecovery }] = await rec.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    assert.equal(inRecovery, false, 'promoted after replaying the archive');
    assert.deepEqual(await batches(rec), [1, 2, 3, 4], 'rows written after the backup were replayed from WAL');
    assert.equal(await rowCount(rec), finalRows);
    await rec.destroy();
  });
}
