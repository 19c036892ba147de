/**
 * Backups started at the same moment (a ScheduledBackup with immediate: true next to an
 * on-demand Backup) each get their own backup ID, so none overwrites another's tars: real
 * PostgreSQL 15, `pgark backup` processes started together, a file:// store and s3rver (behind
 * the harness's SigV4-verifying front), where a claim is a PUT and its check a ListObjectsV2.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { openObjectStore } from '../../src/storage/open.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import { parseLsn } from '../../src/pg/lsn.js';
import { storeCatalog } from './helpers.js';
import { backupOrigin, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from '../recovery/helpers.js';
import { FILE_MAP } from '../../src/catalog/incremental.js';
import { tarIndexKey } from '../../src/catalog/tar-index.js';


/** The backup_label stored inside a backup's data.tar, read back through the store. */
async function storedLabel(store: TestStore, serverName: string, id: string): Promise<string> {
  const os = await openObjectStore(store.resolved(serverName));
  try {
    const tar = await os.getBuffer(`${backupPrefix(serverName, id)}data.tar`);
    const r = spawnSync('tar', ['-xOf', '-', './backup_label'], { input: tar, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  } finally {
    await os.close();
  }
}

for (const kind of ['file', 's3'] as StoreKind[]) {
  describe(`backups started at the same moment (${kind})`, () => {
    let store: TestStore;
    let origin: Origin;

    before(async () => {
      store = await startStore(kind);
      origin = await startOrigin(store);
      await insertBatch(origin.pg, 1, 2000);
    });
    after(async () => {
      await origin?.pg.destroy();
      await store?.stop();
    });

    /** Starts n backups at once; checks that each one's backup.info and data.tar describe the same backup. */
    async function backupsAtOnce(n: number): Promise<string[]> {
      const ids = await Promise.all(Array.from({ length: n }, () => backupOrigin(origin)));
      assert.equal(new Set(ids).size, n, `distinct ids: ${ids.join(' ')}`);
      const c = await storeCatalog(store, origin.clusterName);
      for (const id of ids) {
        const info = c.backups.find((b) => b.backup_id === id);
        assert.equal(info?.status, 'DONE', id);
        const label = await storedLabel(store, origin.clusterName, id);
        assert.match(label, new RegExp(`^LABEL: pgark backup cloud ${id}$`, 'm'), `${id}: data.tar holds its own backup_label`);
        const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{24})\)$/m.exec(label);
        assert.ok(start, label);
        assert.equal(parseLsn(start[1]), parseLsn(String(info!.begin_xlog)), `${id}: begin_xlog`);
        assert.equal(start[2], info!.begin_wal, `${id}: begin_wal`);
        assert.equal(info!.backup_label, label, `${id}: backup.info's backup_label`);
        const keys = c.objects.get(id)!.map((o) => o.key.slice(o.key.lastIndexOf('/') + 1)).sort();
        assert.deepEqual(keys, ['backup.info', 'data.tar', FILE_MAP, tarIndexKey('data.tar')], `${id}: no claim left behind`);
      }
      return ids;
    }

    async function restoresToItsEnd(id: string): Promise<void> {
      const { result, recovered } = await restore(
        recoveryManifest(store, { name: `r-${kind}-${id.toLowerCase()}`, sourceName: origin.clusterName, recoveryTarget: { backupID: id, targetImmediate: true }, noBackup: true }),
        ['--start'],
      );
      try {
        assert.equal(result.code, 0, result.stderr);
        const [{ n }] = await recovered.query<{ n: string }>('SELECT count(*)::text AS n FROM rows');
        assert.equal(n, '2000', `${id} restored`);
      } finally {
        await recovered.destroy();
      }
    }

    it('two backups started together get distinct IDs, each whole and restorable', async () => {
      const ids = await backupsAtOnce(2);
      for (const id of ids) await restoresToItsEnd(id);
    });

    // Ten on file:// only: on s3rver the pair already exercises the claim through PUT and listing.
    if (kind === 'file') {
      it('ten backups started together get ten distinct IDs, each matching its own pieces', async () => {
        const ids = await backupsAtOnce(10);
        // Restores are the slow part: the first and the last to get an ID stand for the rest.
        const sorted = [...ids].sort();
        for (const id of [sorted[0], sorted.at(-1)!]) await restoresToItsEnd(id);
      });
    }
  });
}
