/**
 * Hardening risk 5, end to end on a bucket whose policy requires x-amz-server-side-encryption on
 * every object write (the S3 front refuses a PUT without it): a real PostgreSQL archives WAL and
 * takes two backups there with data/wal encryption AES256. Retention through a front that also
 * refuses deletes (Object Lock) must leave the obsolete backup DONE, complete and restorable;
 * through the SSE front alone it deletes it, and `pgark check` passes there too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { backdate } from './scenarios.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupPrefix, walsPrefix } from '../../src/catalog/layout.js';
import { takeBackups } from './real-backups.js';
import { batches, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from '../recovery/helpers.js';

const SERVER = 'locked';
const SSE = { 'x-amz-server-side-encryption': 'AES256' };

let s3: S3rver;
let locked: S3rver;
let store: TestStore;
let origin: Origin;
let objects: ObjectStore;
const dir = scratchDir('locked');
const ids: { a?: string; b?: string } = {};
const recovered: Recovered[] = [];

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of objects.list(prefix)) if (e.object) out.push(`${e.object.key} ${e.object.size}`);
  return out;
}

/** The origin's manifest, pointed at another front of the same s3rver. */
function manifestVia(front: S3rver): string {
  const file = join(dir.path, `via-${front.port}.yaml`);
  writeFileSync(file, readFileSync(origin.manifest, 'utf8').replaceAll(`127.0.0.1:${s3.port}`, `127.0.0.1:${front.port}`));
  return file;
}


before(async () => {
  s3 = await startS3rver({ rules: { requireHeaders: SSE } });
  locked = await s3.withFront({ requireHeaders: SSE, refuseDeletes: true });
  store = await startStore('s3', { s3rver: s3 });
  origin = await startOrigin(store, { clusterName: SERVER, objectStore: { data: { encryption: 'AES256' }, wal: { encryption: 'AES256' } } });
  objects = await openObjectStore(store.resolved(SERVER));
  [ids.a, ids.b] = await takeBackups(origin, 2);
  await backdate(objects, SERVER, ids.a!, 20, { encryption: 'AES256' });
  await backdate(objects, SERVER, ids.b!, 10, { encryption: 'AES256' });
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await origin?.pg.destroy();
  await objects?.close();
  await store?.stop();
  await locked?.stop();
  await s3?.stop();
  dir.cleanup();
});

test('the front really refuses a write without server-side encryption', async () => {
  await assert.rejects(objects.put('probe/bare', Buffer.from('x')), /AccessDenied|credentials rejected/);
});

test('retention on a bucket refusing deletes leaves the obsolete backup DONE, complete, and restorable', async () => {
  const before = { a: await keysUnder(backupPrefix(SERVER, ids.a!)), wal: await keysUnder(walsPrefix(SERVER)) };
  const r = await pgark(['retention', '-f', manifestVia(locked), '--policy', '7d']);
  assert.notEqual(r.code, 0, `retention claimed success:\n${r.stdout}`);
  assert.match(r.stderr, new RegExp(`backup ${ids.a} was not deleted and is unchanged`));
  assert.match(r.stderr, /AccessDenied/);

  const catalog = await listBackups(objects, SERVER);
  assert.deepEqual(catalog.backups.map((b) => [b.backup_id, b.status, b.error]), [
    [ids.a, 'DONE', null],
    [ids.b, 'DONE', null],
  ]);
  assert.deepEqual(await keysUnder(backupPrefix(SERVER, ids.a!)), before.a);
  assert.deepEqual(await keysUnder(walsPrefix(SERVER)), before.wal);

  const { result, recovered: rec } = await restore(
    recoveryManifest(store, { name: 'restored-a', sourceName: SERVER, sourceServerName: SERVER, recoveryTarget: { backupID: ids.a }, noBackup: true }),
    ['--start'],
  );
  recovered.push(rec);
  assert.equal(result.code, 0, `pgark restore of ${ids.a} failed:\n${result.stderr}`);
  assert.match(result.stdout, new RegExp(`^Backup:\\s+${ids.a}: recoveryTarget\\.backupID names it`, 'm'));
  assert.deepEqual(await batches(rec), [1, 2, 3]);
});

test('retention and check on the SSE-required bucket: every write carries the encryption', async () => {
  const r = await pgark(['retention', '-f', origin.manifest, '--policy', '7d', '--json']);
  assert.equal(r.code, 0, `pgark retention failed:\n${r.stderr}`);
  const catalog = await listBackups(objects, SERVER);
  assert.deepEqual(catalog.backups.map((b) => [b.backup_id, b.status]), [[ids.b, 'DONE']]);
  assert.deepEqual(await keysUnder(backupPrefix(SERVER, ids.a!)), []);

  const check = await pgark(['check', '-f', origin.manifest, '--json']);
  const rows = (JSON.parse(check.stdout) as { rows: { check: string; status: string; detail: string }[] }).rows;
  const probe = rows.find((x) => x.check === 'backup store: write+delete' || x.check === 'backup store: access');
  assert.equal(probe?.status, 'ok', JSON.stringify(rows, null, 2));
});
