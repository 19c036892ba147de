process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupInfoKey, basePrefix, backupPrefix, walKey, walsPrefix } from '../../src/catalog/layout.js';
import { applyRetention, parseRetentionPolicy, planBackupDeletion, planFromCatalog } from '../../src/catalog/retention.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startStore, type StoreKind } from '../harness/stores.js';
import { allKeys, backupIdAt, DAY, segments, walName, type SyntheticBackup } from './synthetic.js';
import { populate, scenario, walObjects } from './scenarios.js';
import { barmanCloud } from './barman-cli.js';

const SERVER = 'pg';

async function planFor(store: ObjectStore, now: Date) {
  return planFromCatalog(await listBackups(store, SERVER), await walObjects(store), '30d', now);
}

/** A real store whose delete() fails after `okCalls` successful calls: once (an interrupted run), or for good (Object Lock). */
function failingAfter(store: ObjectStore, okCalls: number, forGood = false): ObjectStore {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'delete') {
        return async (keys: string[]) => {
          const call = calls++;
          if (call === okCalls || (forGood && call > okCalls)) throw new Error('injected interruption');
          return target.delete(keys);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const stripWal = (key: string) => key.slice(key.lastIndexOf('/') + 1).replace(/\.gz$/, '');

for (const kind of ['file', 's3', 'azure-connection-string'] as StoreKind[]) {
  test(`retention applied on ${kind}: exactly the expected objects remain, also after an interrupted run`, async () => {
    const now = new Date();
    const s = scenario(now.getTime());
    const ts = await startStore(kind);
    const store = await openObjectStore(ts.resolved(SERVER));
    try {
      await populate(store, s);
      const plan = await planFor(store, now);
      const ids = s.backups.map((b) => b.id);
      assert.deepEqual(
        plan.backups.map((b) => b.decision),
        ['delete', 'ignore', 'keep', 'delete', 'delete', 'keep', 'ignore', 'keep', 'keep'],
        JSON.stringify(plan.backups.map((b) => [b.backupId, b.decision, b.reason])),
      );

      // Interrupt the run on its 5th delete call (the second backup's WAL, after its data), then run again from a fresh listing.
      await assert.rejects(applyRetention(failingAfter(store, 4), SERVER, plan), /injected interruption/);
      const midway = await listBackups(store, SERVER);
      assert.equal(midway.backups.find((b) => b.backup_id === ids[3])?.status, 'FAILED', 'the backup whose deletion was interrupted is not DONE any more');
      const resumed = await planFor(store, now);
      assert.equal(resumed.backups.find((b) => b.backupId === ids[3])?.decision, 'finish-deletion');
      await applyRetention(store, SERVER, resumed);
      // A third run has nothing left to do.
      const third = await planFor(store, now);
      assert.deepEqual(third.steps, []);

      const keptIds = [ids[1], ids[2], ids[5], ids[6], ids[7], ids[8]];
      const remainingBase = await allKeys(store, basePrefix(SERVER));
      assert.deepEqual(
        [...new Set(remainingBase.map((k) => k.slice(basePrefix(SERVER).length).split('/')[0]))].sort(),
        keptIds.sort(),
      );
      for (const id of keptIds) assert.ok(remainingBase.includes(backupInfoKey(SERVER, id)));
      assert.ok(remainingBase.includes(`${backupPrefix(SERVER, ids[2])}annotations/keep`));

      const remainingWal = (await allKeys(store, walsPrefix(SERVER))).map(stripWal).sort();
      const expected = [
        // TL1: the first deletion's remove_until (the keep:standalone backup) is on TL1, so the FAILED
        // TL1 backup does not protect it: 1..5 go; from 6 on, TL1 is protected by the remaining TL1 backups.
        ...segments(1, 6, 8),
        `${walName(1, 6)}.00000028.backup`,
        '00000002.history',
        '00000003.history',
        // TL2: 8..B go with the 90-days-ago backup; C..E stay because barman protects the timeline of
        // the backup being deleted (the 80-days-ago one, TL2) when the next backup is on TL3.
        ...segments(2, 12, 14),
        `${walName(2, 14)}.partial`,
        // TL3 below the oldest kept DONE backup's begin_wal (0F) goes.
        ...segments(3, 15, 23),
        `${walName(3, 15)}.00000028.backup`,
      ].sort();
      assert.deepEqual(remainingWal, expected);
      // Every kept DONE backup still has all WAL from its begin to the newest segment.
      for (const b of s.backups.filter((x) => keptIds.includes(x.id) && (x.status ?? 'DONE') === 'DONE' && x.timeline === 3)) {
        for (const seg of segments(3, b.beginSeg, 23)) assert.ok(remainingWal.includes(seg), `${b.id} needs ${seg}`);
      }
      assert.ok((await allKeys(store, walsPrefix(SERVER))).includes(walKey(SERVER, walName(3, 15), '.gz')), 'keys keep their compression suffix');
    } finally {
      await store.close();
      await ts.stop();
    }
  });
}

test('a store refusing deletes leaves every backup as it was, DONE and complete', async () => {
  const now = new Date();
  const ts = await startStore('file');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    await populate(store, scenario(now.getTime()));
    const plan = await planFor(store, now);
    assert.ok(plan.steps.length > 0);
    const before = await allKeys(store, '');
    const infos = await Promise.all(plan.steps.map((s) => store.getBuffer(backupInfoKey(SERVER, s.backupId))));
    await assert.rejects(applyRetention(failingAfter(store, 0, true), SERVER, plan), /was not deleted and is unchanged: injected interruption/);
    assert.deepEqual(await allKeys(store, ''), before);
    for (const [i, s] of plan.steps.entries()) assert.ok((await store.getBuffer(backupInfoKey(SERVER, s.backupId))).equals(infos[i]), `${s.backupId}: backup.info restored byte for byte`);
    assert.deepEqual((await planFor(store, now)).backups, plan.backups, 'the next run sees the same catalog');
  } finally {
    await store.close();
    await ts.stop();
  }
});

test('an unreadable backup.info makes retention delete nothing', async () => {
  const now = new Date();
  const s = scenario(now.getTime());
  const ts = await startStore('file');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    await populate(store, s);
    await store.put(backupInfoKey(SERVER, '20000101T000000'), Buffer.from('status=DONE\ntimeline=one\n'));
    const before = await allKeys(store, '');
    const plan = await planFor(store, now);
    await assert.rejects(applyRetention(store, SERVER, plan), /retention deleted nothing: cannot read backup.info of 20000101T000000 \(field timeline: not an integer/);
    assert.deepEqual(await allKeys(store, ''), before);
  } finally {
    await store.close();
    await ts.stop();
  }
});

/** Keys barman-cloud-backup-delete --dry-run says it would delete. */
function dryRunKeys(output: string): string[] {
  const keys: string[] = [];
  for (const m of output.matchAll(/Skipping deletion of objects \[(.*)\] due to --dry-run option/g)) {
    for (const q of m[1].matchAll(/'([^']*)'/g)) keys.push(q[1]);
  }
  return keys;
}

/** More catalogs for the agreement test: a keep:full backup under "2m", one timeline under "4w". */
function variants(now: number): { policy: string; catalog: ReturnType<typeof scenario>; expectBackups: number }[] {
  const at = (daysAgo: number) => new Date(now - daysAgo * DAY);
  const b = (daysAgo: number, timeline: number, beginSeg: number, endSeg: number, status?: 'FAILED'): SyntheticBackup => ({
    id: backupIdAt(at(daysAgo)),
    timeline,
    beginSeg,
    endSeg,
    endTime: at(daysAgo),
    status,
  });
  const keepFull = [b(200, 1, 2, 2), b(150, 1, 4, 4), b(100, 1, 6, 6), b(70, 2, 9, 9), b(50, 2, 11, 11), b(10, 2, 13, 13)];
  const oneTimeline = [b(60, 1, 2, 3), b(50, 1, 5, 5, 'FAILED'), b(40, 1, 7, 7), b(29, 1, 9, 9), b(27, 1, 11, 11), b(1, 1, 14, 14)];
  return [
    { policy: '30d', catalog: scenario(now), expectBackups: 3 },
    {
      policy: '2m',
      catalog: {
        backups: keepFull,
        wals: [...segments(1, 1, 8), '00000002.history', ...segments(2, 8, 14)],
        keep: new Map([[keepFull[0].id, 'full' as 'standalone']]),
      },
      expectBackups: 2,
    },
    {
      policy: '4w',
      catalog: { backups: oneTimeline, wals: [...segments(1, 1, 15), `${walName(1, 15)}.partial`], keep: new Map() },
      expectBackups: 2,
    },
  ];
}

test('barman-cloud-backup-delete 3.4 --dry-run and pgark choose the same backups and WAL (s3rver)', async () => {
  const s3 = await startStore('s3');
  try {
    for (const v of variants(Date.now())) {
      const ts = await startStore('s3', { s3rver: s3.s3rver });
      const store = await openObjectStore(ts.resolved(SERVER));
      try {
        await populate(store, v.catalog);
        const policy = parseRetentionPolicy(v.policy);
        const r = barmanCloud(ts, 'barman-cloud-backup-delete', ['--retention-policy', policy.barman, '--dry-run'], SERVER);
        assert.equal(r.status, 0, r.stderr);
        const theirs = dryRunKeys(r.stdout + r.stderr);
        // barman prints keys with the destination's path (s3://bucket/<path>) in front.
        const root = new URL(ts.destinationPath).pathname.replace(/^\//, '');
        const rel = (k: string) => (root && k.startsWith(root + '/') ? k.slice(root.length + 1) : k);
        const theirBackups = [...new Set(theirs.map(rel).filter((k) => k.endsWith('/backup.info')).map((k) => k.split('/').at(-2)!))].sort();
        const theirWal = theirs.map(rel).filter((k) => k.startsWith(walsPrefix(SERVER))).map(stripWal).sort();

        const plan = planFromCatalog(await listBackups(store, SERVER), await walObjects(store), policy, new Date());
        const ourBackups = plan.steps.map((st) => st.backupId).sort();
        const ourWal = plan.steps.flatMap((st) => st.walKeys).map(stripWal).sort();
        assert.deepEqual(ourBackups, theirBackups, `backups under ${v.policy}`);
        assert.deepEqual(ourWal, theirWal, `WAL under ${v.policy}`);
        assert.equal(ourBackups.length, v.expectBackups, `number of deleted backups under ${v.policy}`);
      } finally {
        await store.close();
        await ts.stop();
      }
    }
  } finally {
    await s3.stop();
  }
});

test('explicit deletion: pgark and barman-cloud-backup-delete 3.4 -b --dry-run remove the same WAL; applied on file://', async () => {
  const ts = await startStore('s3');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    const s = scenario(Date.now());
    await populate(store, s);
    const root = new URL(ts.destinationPath).pathname.replace(/^\//, '');
    const catalog = await listBackups(store, SERVER);
    const wals = await walObjects(store);
    const walCounts: number[] = [];
    for (const i of [0, 3, 4, 8]) {
      const id = s.backups[i].id;
      const r = barmanCloud(ts, 'barman-cloud-backup-delete', ['-b', id, '--dry-run'], SERVER);
      assert.equal(r.status, 0, r.stderr);
      const theirWal = dryRunKeys(r.stdout + r.stderr)
        .map((k) => k.slice(root.length + 1))
        .filter((k) => k.startsWith(walsPrefix(SERVER)))
        .map(stripWal)
        .sort();
      const plan = planBackupDeletion(catalog, wals, id, []);
      assert.deepEqual(plan.steps.map((st) => st.backupId), [id]);
      const ourWal = plan.steps[0].walKeys.map(stripWal).sort();
      assert.deepEqual(ourWal, theirWal, `WAL freed by deleting ${id}`);
      walCounts.push(ourWal.length);
    }
    // The oldest frees WAL; one after a keep:standalone backup frees none (barman skips cleanup then);
    // so does the newest (an older backup still needs the WAL).
    assert.ok(walCounts[0] > 0);
    assert.equal(walCounts[1], 0);
    assert.equal(walCounts[3], 0);
    assert.throws(() => planBackupDeletion(catalog, wals, s.backups[2].id, []), /keep:standalone annotation/);
    assert.throws(() => planBackupDeletion(catalog, wals, '20000101T000000', []), /not found/);
  } finally {
    await store.close();
    await ts.stop();
  }
  // Applied: the backup and exactly the planned WAL disappear.
  const fts = await startStore('file');
  const fstore = await openObjectStore(fts.resolved(SERVER));
  try {
    const s = scenario(Date.now());
    await populate(fstore, s);
    const before = await allKeys(fstore, '');
    const plan = planBackupDeletion(await listBackups(fstore, SERVER), await walObjects(fstore), s.backups[0].id, []);
    await applyRetention(fstore, SERVER, plan);
    const remaining = new Set(await allKeys(fstore, ''));
    const gone = before.filter((k) => !remaining.has(k));
    assert.deepEqual(gone.sort(), [...plan.steps[0].walKeys, ...before.filter((k) => k.startsWith(backupPrefix(SERVER, s.backups[0].id)))].sort());
  } finally {
    await fstore.close();
    await fts.stop();
  }
});
