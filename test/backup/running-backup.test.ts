/**
 * A backup that is still running (its tars stored, its end WAL not yet archived, no backup.info)
 * lists as STARTED, and neither `pgark backup delete` nor retention touches its objects; it then
 * completes DONE and restores. Real PostgreSQL 15, `pgark` processes, a file:// store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import { backupUntilWalWait, closeArchiveGate, pgark, storeCatalog, storeObjects } from './helpers.js';
import { archiveCurrentWal, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from '../recovery/helpers.js';

async function objectsUnder(store: TestStore, prefix: string): Promise<string[]> {
  return (await storeObjects(store, prefix)).map((o) => `${o.key} ${o.size}`).sort();
}

describe('a backup while it runs', () => {
  let store: TestStore;
  let origin: Origin;

  before(async () => {
    store = await startStore('file');
    origin = await startOrigin(store);
    await insertBatch(origin.pg, 1, 1500);
    await archiveCurrentWal(origin.pg);
  });
  after(async () => {
    await origin?.pg.destroy();
    await store?.stop();
  });

  it('lists as STARTED, is refused by backup delete and left alone by retention, then completes DONE and restores', async () => {
    const gate = await closeArchiveGate(origin);
    let backup: Awaited<ReturnType<typeof backupUntilWalWait>> | undefined;
    try {
      backup = await backupUntilWalWait(origin, ['--name', 'long-running']);
      const id = backup.backupId;
      const prefix = backupPrefix(origin.clusterName, id);
      const before = await objectsUnder(store, prefix);
      assert.ok(before.some((o) => o.includes('/data.tar ')), `its tars are stored: ${before.join(', ')}`);

      const list = await pgark(['backup', 'list', '-f', origin.manifest]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^${id}\\s+-\\s+STARTED\\s`, 'm'));
      const json = JSON.parse((await pgark(['backup', 'list', '-f', origin.manifest, '--json'])).stdout);
      assert.deepEqual(
        json.pgark_running.map((r: { backup_id: string; status: string; pid: number }) => [r.backup_id, r.status, r.pid]),
        [[id, 'STARTED', backup.child.pid]],
      );
      assert.ok(!json.pgark_incomplete.includes(id), 'not incomplete');
      assert.ok(!json.backups_list.some((b: { backup_id: string }) => b.backup_id === id), 'not in barman-cloud-backup-list\'s list');

      const del = await pgark(['backup', 'delete', id, '-f', origin.manifest]);
      assert.notEqual(del.code, 0, del.stdout);
      assert.match(del.stderr, new RegExp(`backup "${id}" is running \\(on \\S+ pid ${backup.child.pid}, last heartbeat [^)]+\\) and is not deleted`));
      const retention = await pgark(['retention', '-f', origin.manifest, '--policy', '1d']);
      assert.equal(retention.code, 0, retention.stderr);
      assert.deepEqual(await objectsUnder(store, prefix), before, 'objects untouched');
    } finally {
      await gate.open();
    }
    assert.equal(await backup.done, 0);
    const info = (await storeCatalog(store, origin.clusterName)).backups.find((b) => b.backup_id === backup!.backupId);
    assert.equal(info?.status, 'DONE');
    assert.ok(!(await objectsUnder(store, backupPrefix(origin.clusterName, backup.backupId))).some((o) => o.includes('pgark-claim-')), 'claim released');

    const { result, recovered } = await restore(
      recoveryManifest(store, { name: 'r-running', sourceName: origin.clusterName, recoveryTarget: { backupID: backup.backupId, targetImmediate: true }, noBackup: true }),
      ['--start'],
    );
    try {
      assert.equal(result.code, 0, result.stderr);
      const [{ n }] = await recovered.query<{ n: string }>('SELECT count(*)::text AS n FROM rows');
      assert.equal(n, '1500');
    } finally {
      await recovered.destroy();
    }
  });
});
