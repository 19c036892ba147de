/**
 * A restore whose one object arrives slower over its connection than the restore writes it reads
 * the rest over more connections (src/storage/ranged.ts), and still verifies every byte: real
 * PostgreSQL 15 and s3rver, reached through the harness's shaping proxy at 8 MB/s a connection
 * (PGARK_RESTORE_RANGE_BYTES of 1 MiB stands in for the 4 MiB ranges, as the test's backup is small).
 * That a reader which keeps up with one connection never adds more is test/storage/contract.ts's:
 * over loopback either side may be the slower one, depending on the machine's load.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { startProxy, type TcpProxy } from '../harness/proxy.js';
import { backupOrigin, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from './helpers.js';

let store: TestStore;
let origin: Origin;
let proxy: TcpProxy;
let backupId: string;

before(async () => {
  store = await startStore('s3');
  origin = await startOrigin(store, { clusterName: 'ranged' });
  await insertBatch(origin.pg, 1, 20000);
  backupId = await backupOrigin(origin, ['--compression', 'none']);
  proxy = await startProxy(store.s3rver!.port, { shape: { rttMs: 5, bytesPerSecond: 8e6 } });
});

after(async () => {
  await proxy?.close();
  await origin?.pg.destroy();
  await store?.stop();
});

const SPLIT = /data\.tar: one connection was the limit; reading on from [\d.]+ \w+ over 4/;

async function restoreVia(port: number, name: string) {
  const manifest = recoveryManifest(store, { name, sourceName: 'ranged', recoveryTarget: { backupID: backupId, targetImmediate: true }, noBackup: true }).replaceAll(
    `:${store.s3rver!.port}`,
    `:${port}`,
  );
  const r = await restore(manifest, [], [], { PGARK_RESTORE_RANGE_BYTES: String(1024 * 1024), PGARK_LOG_LEVEL: 'info' });
  await r.recovered.destroy();
  return r.result;
}

test('over a slow link the one data.tar is read on over four connections, and every file is verified', async () => {
  const r = await restoreVia(proxy.port, 'over-slow-link');
  assert.ok(proxy.accepted > 0, 'the restore went through the shaping proxy');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, SPLIT);
  assert.match(r.stderr, /verified: all 1 stored object\(s\) have the SHA-256 recorded in backup.info/);
  assert.match(r.stderr, /verified: all \d+ files of backup_manifest restored/);
});
