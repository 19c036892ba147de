/**
 * A base backup into Azure Blob Storage (Azurite), restored by barman-cloud-restore's Azure provider.
 * Azurite keeps blob index tags, so it also shows that barmanObjectStore.tags reach every object.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clientTool } from '../../src/pg/binaries.js';
import { createTestData, pgark, run, startArchivingServer, type ArchivingServer } from './helpers.js';

describe('base backup to Azure Blob Storage', () => {
  let store: TestStore;
  let server: ArchivingServer;
  const work = scratchDir('backup-azure');

  before(async () => {
    store = await startStore('azure-connection-string');
    server = await startArchivingServer(store, { objectStore: { tags: { env: 'test', team: 'db' } } });
    await createTestData(server.pg, 2000);
  });
  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
    work.cleanup();
  });

  it('a remote snappy backup is listed DONE and restored by barman-cloud-restore, and pg_verifybackup accepts it', async () => {
    const b = await pgark(['backup', '-f', server.manifest, '--method', 'remote', '--compression', 'snappy', '--immediate-checkpoint', '--json'], server.pg.env);
    assert.equal(b.code, 0, b.stderr);
    const id = JSON.parse(b.stdout).backup_id as string;
    const list = await pgark(['backup', 'list', '-f', server.manifest, '--json']);
    const entry = JSON.parse(list.stdout).backups_list.find((x: { backup_id: string }) => x.backup_id === id);
    assert.equal(entry.status, 'DONE');
    assert.equal(entry.pgark_compression, 'snappy');
    const dest = join(work.path, 'restore');
    const barman = store.barman!;
    const r = await run('barman-cloud-restore', [...barman.args, store.destinationPath, server.clusterName, id, dest], barman.env);
    assert.equal(r.code, 0, r.stderr);
    const verify = await run(clientTool('pg_verifybackup'), ['-n', dest]);
    assert.equal(verify.code, 0, `${verify.stdout}${verify.stderr}`);

    const az = store.azurite!;
    const prefix = store.destinationPath.slice(`${az.blobEndpoint}/${az.container}/`.length);
    const container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(az.container);
    for (const name of ['data.tar.snappy', 'backup.info']) {
      const { tags } = await container.getBlobClient(`${prefix}/${server.clusterName}/base/${id}/${name}`).getTags();
      assert.deepEqual(tags, { env: 'test', team: 'db' }, `tags of ${name}`);
    }
  });
});
