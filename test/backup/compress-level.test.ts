/**
 * PGARK_COMPRESS_LEVEL: a level outside the codec's range fails the backup before anything is
 * stored, and a valid one is the level the tars are compressed with. Real PostgreSQL 15 and a
 * file:// store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { createTestData, pgark, startArchivingServer, storeCatalog, storeObjects, type ArchivingServer } from './helpers.js';
import { archiveCurrentWal } from '../recovery/helpers.js';

describe('PGARK_COMPRESS_LEVEL', () => {
  let store: TestStore;
  let server: ArchivingServer;
  const backup = (name: string, level?: string) =>
    pgark(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--compression', 'gzip', '--name', name], { ...server.pg.env, ...(level === undefined ? {} : { PGARK_COMPRESS_LEVEL: level }) });
  const dataTarSize = async (name: string) => {
    const b = (await storeCatalog(store, server.clusterName)).backups.find((x) => x.backup_name === name);
    assert.equal(b?.status, 'DONE', `${name} is DONE`);
    const tar = (await storeObjects(store, `${server.clusterName}/base/${b.backup_id}/`)).find((o) => o.key.endsWith('/data.tar.gz'));
    assert.ok(tar, `${name} has a data.tar.gz`);
    return tar.size;
  };

  before(async () => {
    store = await startStore('file');
    server = await startArchivingServer(store);
    await createTestData(server.pg, 20000);
    await archiveCurrentWal(server.pg);
  });
  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
  });

  it('a level outside gzip\'s 0-9 is refused with the variable, the range and a hint, and nothing is stored', async () => {
    const before = (await storeObjects(store, `${server.clusterName}/base/`)).length;
    const r = await backup('too-high', '12');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /PGARK_COMPRESS_LEVEL=12 is not a gzip level: expected 0-9/);
    assert.match(r.stderr, /set a level from 0 to 9/);
    assert.equal((await storeObjects(store, `${server.clusterName}/base/`)).length, before);
  });

  it('level 0 stores the tar uncompressed inside gzip, far larger than the default level', async () => {
    assert.equal((await backup('level-0', '0')).code, 0);
    assert.equal((await backup('default')).code, 0);
    const [stored, compressed] = [await dataTarSize('level-0'), await dataTarSize('default')];
    assert.ok(stored > 3 * compressed, `level 0: ${stored} bytes, default: ${compressed}`);
  });
});
