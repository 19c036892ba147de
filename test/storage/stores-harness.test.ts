/**
 * The test stores other suites rely on: each manifest loads through the config layer and opens
 * the same store, and barman-cloud reaches that store with the harness's environment.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterObjectStore, findCluster, loadContext } from '../../src/config/index.js';
import { openObjectStore } from '../../src/storage/open.js';
import { walKey } from '../../src/catalog/layout.js';
import { STORE_KINDS, startStore, type TestStore } from '../harness/stores.js';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startAzurite, type Azurite } from '../harness/azurite.js';
import { scratchDir } from '../harness/tmp.js';

let s3rver: S3rver;
let azurite: Azurite;
before(async () => {
  [s3rver, azurite] = await Promise.all([startS3rver(), startAzurite()]);
});
after(async () => {
  await Promise.all([s3rver?.stop(), azurite?.stop()]);
});

function barmanCheckWalArchive(ts: TestStore, serverName: string): { status: number | null; stderr: string } {
  const r = spawnSync('barman-cloud-check-wal-archive', [...ts.barman!.args, ts.destinationPath, serverName], {
    env: { ...process.env, ...ts.barman!.env },
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr };
}

for (const kind of STORE_KINDS) {
  describe(`test store ${kind}`, () => {
    let ts: TestStore;
    const dir = scratchDir('stores');
    before(async () => {
      ts = await startStore(kind, { s3rver, azurite });
    });
    after(async () => {
      await ts?.stop();
      dir.cleanup();
    });

    test('its manifest loads through the config layer and opens the same store', async () => {
      const file = join(dir.path, 'cluster.yaml');
      writeFileSync(file, ts.manifest({ clusterName: 'harness', serverName: 'srv' }));
      const ctx = await loadContext({ files: [file] });
      const resolved = await clusterObjectStore(ctx, findCluster(ctx.manifests, 'harness'));
      assert.equal(resolved.serverName, 'srv');
      const fromManifest = await openObjectStore(resolved);
      const direct = await openObjectStore(ts.resolved('srv'));
      try {
        await fromManifest.put('srv/probe', Buffer.from(kind));
        assert.equal((await direct.getBuffer('srv/probe')).toString(), kind);
        await direct.delete(['srv/probe']);
      } finally {
        await fromManifest.close();
        await direct.close();
      }
    });

    if (kind !== 'file') {
      test('barman-cloud reaches the same store with the harness environment', async () => {
        const empty = barmanCheckWalArchive(ts, 'pg');
        assert.equal(empty.status, 0, empty.stderr);
        const store = await openObjectStore(ts.resolved());
        try {
          await store.put(walKey('pg', '000000010000000000000001'), Buffer.alloc(1024, 1));
        } finally {
          await store.close();
        }
        const used = barmanCheckWalArchive(ts, 'pg');
        assert.equal(used.status, 1);
        assert.match(used.stderr, /Expected empty archive/);
      });
    }
  });
}
