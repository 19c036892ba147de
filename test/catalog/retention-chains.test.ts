/**
 * Retention and deletion over incremental chains, with real backups of a real PostgreSQL 15 in
 * s3rver: two chains, F1 -> I1a -> I1b and F2 -> I2a -> I2b, backdated in backup.info so that a 7d
 * window makes I2a its base. The window would delete F2; the chain rule keeps it ("needed by
 * incremental I2a") and deletes the expired chain F1.. whole, newest first. The deletion is
 * interrupted at every step in turn: no pass ever leaves a DONE incremental whose chain has a
 * missing or non-DONE member. What stays restores (I2a, through F2's files), and `pgark backup
 * delete` refuses a backup a kept incremental needs unless --cascade.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { parseBackupInfo } from '../../src/catalog/backup-info.js';
import { PyDateTime } from '../../src/catalog/pytime.js';
import { chainOf, incrementalPrefix, isIncremental, listIncrementals, serializeIncrementalInfo } from '../../src/catalog/incremental.js';
import { applyRetention, planBackupDeletion, planFromCatalog, type WalObject } from '../../src/catalog/retention.js';
import { archivedWalFiles } from '../../src/wal/list.js';
import { backdate } from './scenarios.js';
import { archiveCurrentWal, batches, backupOrigin, insertBatch, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from '../recovery/helpers.js';

const SERVER = 'chains';
const DAY = 24 * 60 * 60 * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: TestStore;
let origin: Origin;
let objects: ObjectStore;
const recovered: Recovered[] = [];
const id: Record<'F1' | 'I1a' | 'I1b' | 'F2' | 'I2a' | 'I2b', string> = { F1: '', I1a: '', I1b: '', F2: '', I2a: '', I2b: '' };

/** backdate() of scenarios.ts for an incremental: its backup.info keeps parent_backup_id. */
async function backdateIncremental(backupId: string, daysAgo: number): Promise<void> {
  const key = `${incrementalPrefix(SERVER, backupId)}backup.info`;
  const info = parseBackupInfo((await objects.getBuffer(key)).toString('utf8'), backupId);
  const end = new Date(Date.now() - daysAgo * DAY);
  info.begin_time = PyDateTime.fromDate(new Date(end.getTime() - 60_000));
  info.end_time = PyDateTime.fromDate(end);
  await objects.put(key, Buffer.from(serializeIncrementalInfo(info)));
}

async function allBackups() {
  const [fulls, incrementals] = await Promise.all([listBackups(objects, SERVER), listIncrementals(objects, SERVER)]);
  return { fulls, incrementals, all: [...fulls.backups, ...incrementals.backups] };
}

async function wals(): Promise<WalObject[]> {
  const out: WalObject[] = [];
  for await (const w of archivedWalFiles(objects, SERVER)) out.push(w);
  return out;
}

/** Every DONE incremental has its whole chain, every member DONE. */
async function assertChainsWhole(when: string): Promise<void> {
  const { all } = await allBackups();
  for (const b of all.filter((x) => isIncremental(x) && x.status === 'DONE')) {
    const chain = chainOf(b.backup_id, all);
    assert.deepEqual(chain.filter((m) => m.status !== 'DONE').map((m) => m.backup_id), [], `${when}: chain of ${b.backup_id}`);
  }
}

before(async () => {
  store = await startStore('s3');
  origin = await startOrigin(store, { clusterName: SERVER });
  objects = await openObjectStore(store.resolved(SERVER));
  const order = ['F1', 'I1a', 'I1b', 'F2', 'I2a', 'I2b'] as const;
  for (const [i, name] of order.entries()) {
    if (i > 0) await sleep(1100); // backup ids have one-second resolution
    await insertBatch(origin.pg, i + 1);
    id[name] = await backupOrigin(origin, name.startsWith('I') ? ['--type', 'incremental'] : []);
  }
  await insertBatch(origin.pg, 7);
  await archiveCurrentWal(origin.pg);
  await backdate(objects, SERVER, id.F1, 30);
  await backdateIncremental(id.I1a, 25);
  await backdateIncremental(id.I1b, 20);
  await backdate(objects, SERVER, id.F2, 12);
  await backdateIncremental(id.I2a, 9);
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await origin?.pg.destroy();
  await objects?.close();
  await store?.stop();
});

test('the chains are what the test means: I1b -> I1a -> F1 and I2b -> I2a -> F2', async () => {
  const { all } = await allBackups();
  assert.deepEqual(chainOf(id.I1b, all).map((b) => b.backup_id), [id.F1, id.I1a, id.I1b]);
  assert.deepEqual(chainOf(id.I2b, all).map((b) => b.backup_id), [id.F2, id.I2a, id.I2b]);
});

test('pgark retention --dry-run: F2 kept as needed by incremental I2a, the expired chain deleted, nothing changed', async () => {
  const r = await pgark(['retention', '-f', origin.manifest, '--policy', '7d', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${id.F2} .*keep +incremental-chain +needed by incremental ${id.I2a}`));
  assert.match(r.stdout, new RegExp(`${id.I2a} .*keep +window-base +newest backup ending before the window start`));
  for (const name of ['F1', 'I1a', 'I1b'] as const) assert.match(r.stdout, new RegExp(`${id[name]} .*DELETE`));
  assert.match(r.stdout, /Dry run: nothing deleted\./);
  const json = await pgark(['retention', '-f', origin.manifest, '--policy', '7d', '--dry-run', '--json']);
  const plan = JSON.parse(json.stdout) as { backups: { backupId: string; parentBackupId: string | null; decision: string }[]; blockedBy: unknown[] };
  assert.deepEqual(plan.blockedBy, []);
  assert.deepEqual(
    Object.fromEntries(plan.backups.map((b) => [b.backupId, [b.decision, b.parentBackupId]])),
    {
      [id.F1]: ['delete', null],
      [id.I1a]: ['delete', id.F1],
      [id.I1b]: ['delete', id.I1a],
      [id.F2]: ['keep', null],
      [id.I2a]: ['keep', id.F2],
      [id.I2b]: ['keep', id.I2a],
    },
  );
  assert.equal((await allBackups()).all.length, 6);
});

test('the plan deletes the expired chain newest first, and an interruption at any step leaves every DONE incremental its chain', async () => {
  const first = planFromCatalog((await allBackups()).fulls, await wals(), '7d', new Date(), undefined, (await allBackups()).incrementals);
  assert.deepEqual(first.steps.map((s) => s.backupId), [id.I1b, id.I1a, id.F1]);
  // Only F1's step frees WAL: while it stays, the WAL from its start is needed.
  assert.deepEqual(first.steps.map((s) => s.walKeys.length > 0), [false, false, true]);

  // Pass n stops after n store phases of the plan (marked, wal-deleted, deleted per backup); the next pass resumes.
  let passes = 0;
  for (let n = 1; ; n++) {
    const { fulls, incrementals } = await allBackups();
    const plan = planFromCatalog(fulls, await wals(), '7d', new Date(), undefined, incrementals);
    if (plan.steps.length === 0) break;
    passes++;
    assert.ok(passes < 20, 'retention converges');
    let events = 0;
    await applyRetention(objects, SERVER, plan, {
      onProgress: () => {
        if (++events === n) throw new Error('interrupted');
      },
    }).catch((err: Error) => assert.equal(err.message, 'interrupted'));
    await assertChainsWhole(`after pass ${passes} (stopped after ${n} phases)`);
  }
  const { all, incrementals } = await allBackups();
  assert.deepEqual(all.map((b) => b.backup_id).sort(), [id.F2, id.I2a, id.I2b]);
  assert.deepEqual(incrementals.unreadable, []);
  assert.ok(passes >= 3, `${passes} passes`);
});

test('the kept base I2a restores through F2 and replays to the end of the archive', async () => {
  const { result, recovered: rec } = await restore(
    recoveryManifest(store, { name: 'from-i2a', sourceName: 'origin', sourceServerName: SERVER, recoveryTarget: { backupID: id.I2a } }),
    ['--start'],
  );
  recovered.push(rec);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(await batches(rec), [1, 2, 3, 4, 5, 6, 7]);
  await rec.destroy();
});

test('pgark backup delete refuses a backup kept incrementals need, naming them; --cascade deletes them newest first', async () => {
  const refused = await pgark(['backup', 'delete', '-f', origin.manifest, id.F2]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`backup "${id.F2}" is needed by incremental backups ${id.I2b}, ${id.I2a} and is not deleted`));
  assert.match(refused.stderr, /--cascade/);
  assert.equal((await allBackups()).all.length, 3, 'nothing deleted');
  // The explicit deletion plan (barman-cloud-backup-delete -b's) refuses it the same way.
  const { fulls, incrementals } = await allBackups();
  assert.throws(() => planBackupDeletion(fulls, [], id.F2, incrementals.backups), new RegExp(`is needed by incremental backups ${id.I2b}, ${id.I2a}`));

  const middle = await pgark(['backup', 'delete', '-f', origin.manifest, id.I2a]);
  assert.notEqual(middle.code, 0);
  assert.match(middle.stderr, new RegExp(`needed by incremental backup ${id.I2b}`));

  const cascade = await pgark(['backup', 'delete', '-f', origin.manifest, id.I2a, '--cascade']);
  assert.equal(cascade.code, 0, cascade.stderr);
  assert.deepEqual(
    cascade.stdout.trim().split('\n').map((l) => l.split(':')[0]),
    [`deleted backup ${id.I2b}`, `deleted backup ${id.I2a}`],
  );
  const { all } = await allBackups();
  assert.deepEqual(all.map((b) => b.backup_id), [id.F2]);
  const left: string[] = [];
  for await (const e of objects.list(`${SERVER}/pgark-incremental/`)) if (e.object) left.push(e.object.key);
  assert.deepEqual(left, []);
});
