/**
 * Object tags on archived WAL (Azurite keeps blob index tags; s3rver ignores x-amz-tagging on PUT):
 * `tags` on segments, `historyTags` instead on .history files, as barman-cloud's --tags/--history-tags.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from './helpers.js';

let store: TestStore;
const dir = scratchDir('waltags');
const d = fakePgdata(join(dir.path, 'tags'));

before(async () => {
  store = await startStore('azure-connection-string');
});
after(async () => {
  await stopWalDaemon(d.pgdata);
  await store.stop();
  dir.cleanup();
});

test('segments carry tags, .history files carry historyTags', async () => {
  const cfg = join(dir.path, 'cluster.yaml');
  writeFileSync(cfg, store.manifest({ clusterName: 'tagged', objectStore: { tags: { env: 'test', team: 'db' }, historyTags: { kind: 'history' } } }));
  const seg = '000000010000000000000001';
  for (const [name, data] of [[seg, craftSegment(seg)], ['00000002.history', Buffer.from('1\t0/1000000\tno recovery target specified\n')]] as const) {
    const r = await runPgark(['wal-archive', '-f', cfg, d.addReady(name, data)], { cwd: d.pgdata });
    assert.equal(r.code, 0, r.stderr);
  }
  const az = store.azurite!;
  const prefix = store.destinationPath.slice(`${az.blobEndpoint}/${az.container}/`.length);
  const container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(az.container);
  const segTags = (await container.getBlobClient(`${prefix}/tagged/wals/0000000100000000/${seg}`).getTags()).tags;
  const histTags = (await container.getBlobClient(`${prefix}/tagged/wals/00000002.history`).getTags()).tags;
  assert.deepEqual(segTags, { env: 'test', team: 'db' });
  assert.deepEqual(histTags, { kind: 'history' });
});
