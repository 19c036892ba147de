/**
 * The resident archiver's "already archived?" index on real stores (file:// and s3rver): one
 * folder LIST answers for many segments, later LISTs ask only for newer keys, and neither costs
 * the never-overwrite rule nor the recovery of an object that disappeared. The restore side's
 * prefetch uses it too: a listed name is fetched without a LIST, and "absent" needs a LIST of the name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ListOptions, ObjectStore } from '../../src/storage/types.js';
import { NotFoundError } from '../../src/util/errors.js';
import { archiveWalFile, EmptyArchiveGate, WalConflictError } from '../../src/wal/archive.js';
import { fetchWalFile } from '../../src/wal/restore.js';
import { ArchivedWalIndex } from '../../src/wal/stored-wal.js';
import type { WalTarget } from '../../src/wal/target.js';
import { craftSegment } from './helpers.js';

const segment = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

/** The store, with every list() call recorded. */
function recordingLists(store: ObjectStore): { store: ObjectStore; lists: { prefix: string; startAfter?: string }[] } {
  const lists: { prefix: string; startAfter?: string }[] = [];
  const recorded: ObjectStore = Object.create(store);
  recorded.list = (prefix: string, opts?: ListOptions) => {
    lists.push({ prefix, startAfter: opts?.startAfter });
    return store.list(prefix, opts);
  };
  return { store: recorded, lists };
}

for (const kind of ['file', 's3'] as const) {
  describe(`archived-WAL index on ${kind}`, () => {
    let testStore: TestStore;
    let client: ObjectStore;
    const dir = scratchDir(`stored-wal-${kind}`);
    const pgWal = join(dir.path, 'pg_wal');
    const gate = new EmptyArchiveGate(dir.path);

    function walFile(name: string, data = craftSegment(name)): { path: string; data: Buffer } {
      const path = join(pgWal, name);
      writeFileSync(path, data);
      return { path, data };
    }

    function target(store: ObjectStore, serverName: string): WalTarget {
      return { store, serverName, compression: 'none', maxParallel: 1, skipEmptyCheck: true, description: serverName };
    }

    before(async () => {
      mkdirSync(pgWal, { recursive: true });
      testStore = await startStore(kind);
      client = await openObjectStore(testStore.resolved('unused'));
    });
    after(async () => {
      await client.close();
      await testStore.stop();
      dir.cleanup();
    });

    test('one folder LIST answers for many segments; the next LIST asks only for keys after the last one listed', async () => {
      const { store, lists } = recordingLists(client);
      const folder = 'batch/wals/0000000100000000/';
      const cached = new ArchivedWalIndex(60_000);
      for (const n of [1, 2, 3]) {
        const r = await archiveWalFile(target(store, 'batch'), walFile(segment(n)).path, gate, { index: cached });
        assert.equal(r.status, 'stored');
      }
      assert.deepEqual(lists, [{ prefix: folder, startAfter: undefined }], 'one LIST for three segments');

      lists.length = 0;
      const fresh = new ArchivedWalIndex(0);
      for (const n of [4, 5]) await archiveWalFile(target(store, 'batch'), walFile(segment(n)).path, gate, { index: fresh });
      assert.deepEqual(lists, [
        { prefix: folder, startAfter: undefined },
        { prefix: folder, startAfter: `${folder}${segment(3)}` },
      ]);
      const stored = [];
      for await (const e of client.list(folder)) stored.push(e.object?.key);
      assert.deepEqual(stored, [1, 2, 3, 4, 5].map((n) => `${folder}${segment(n)}`));
    });

    test('another writer storing a name after the first listing is still caught: different bytes are a conflict, nothing is overwritten', async () => {
      const index = new ArchivedWalIndex(0);
      await archiveWalFile(target(client, 'foreign'), walFile(segment(1)).path, gate, { index });
      const theirs = craftSegment(segment(2));
      const key = `foreign/wals/0000000100000000/${segment(2)}`;
      await client.put(key, theirs);
      await assert.rejects(archiveWalFile(target(client, 'foreign'), walFile(segment(2)).path, gate, { index }), (err: Error) => {
        assert.ok(err instanceof WalConflictError, err.message);
        assert.match(err.message, /already archived as foreign\/wals\/0000000100000000\/000000010000000000000002 with different content/);
        return true;
      });
      assert.ok((await client.getBuffer(key)).equals(theirs), 'their object is untouched');
      // The same bytes, though, are success without a rewrite.
      const same = await archiveWalFile(target(client, 'foreign'), walFile(segment(2), theirs).path, gate, { index });
      assert.equal(same.status, 'exists');
    });

    test('a name the index holds but the store lost is uploaded again', async () => {
      const index = new ArchivedWalIndex(60_000);
      const wal = walFile(segment(1));
      const key = `lost/wals/0000000100000000/${segment(1)}`;
      assert.equal((await archiveWalFile(target(client, 'lost'), wal.path, gate, { index })).status, 'stored');
      await client.delete([key]);
      const again = await archiveWalFile(target(client, 'lost'), wal.path, gate, { index });
      assert.deepEqual([again.status, again.key], ['stored', key]);
      assert.ok((await client.getBuffer(key)).equals(wal.data));
    });

    test("restore's lookup: listed names cost no LIST however old the listing, a name it lacks one LIST of its own, a listed object gone since is listed again", async () => {
      const { store, lists } = recordingLists(client);
      const folder = 'replay/wals/0000000100000000/';
      const stored = new Map([1, 2, 3].map((n) => [n, craftSegment(segment(n))]));
      for (const [n, bytes] of stored) await client.put(`${folder}${segment(n)}`, bytes);
      // TTL 0: every listing is stale at once, as one is after a second of replay.
      const stale = new ArchivedWalIndex(0);
      const dest = join(dir.path, 'RECOVERYXLOG');
      for (const n of [1, 2]) {
        await fetchWalFile(target(store, 'replay'), segment(n), dest, stale);
        assert.ok(readFileSync(dest).equals(stored.get(n)!));
      }
      assert.deepEqual(lists, [{ prefix: folder, startAfter: undefined }], 'one folder LIST for both: a WAN round trip before every GET on main');

      // As the restore service builds it (restore-service.ts): a listing is never refreshed before a miss.
      const index = new ArchivedWalIndex(Infinity);
      await fetchWalFile(target(store, 'replay'), segment(1), dest, index);
      lists.length = 0;
      await assert.rejects(fetchWalFile(target(store, 'replay'), segment(4), dest, index), NotFoundError);
      assert.deepEqual(lists, [{ prefix: `${folder}${segment(4)}`, startAfter: undefined }], 'the end of the archive: one LIST of the name, no refresh before it');

      lists.length = 0;
      await client.delete([`${folder}${segment(3)}`]);
      await assert.rejects(fetchWalFile(target(store, 'replay'), segment(3), dest, index), NotFoundError);
      assert.deepEqual(lists, [{ prefix: `${folder}${segment(3)}`, startAfter: undefined }], '"absent" only after a LIST of the name itself');
    });
  });
}
