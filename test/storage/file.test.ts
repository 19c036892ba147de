import { runContract } from './contract.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BufferLender } from '../../src/io/lent.js';
import { openObjectStore } from '../../src/storage/open.js';
import { serverIdentity } from '../../src/pg/local-server.js';
import { scratchDir } from '../harness/tmp.js';

runContract('file', 'full');


test('directories and objects the file driver creates are private and belong to the store root owner, so root and postgres can share a store', async () => {
  const dir = scratchDir('file-owner');
  try {
    const root = join(dir.path, 'store');
    mkdirSync(root);
    // As root, hand the store to the PostgreSQL OS user, as a user running archive_command as postgres would.
    const who = serverIdentity();
    if (who) chownSync(root, who.uid, who.gid);
    const expected = statSync(root);
    const store = await openObjectStore({ destinationPath: `file://${root}` });
    await store.put('srv/wals/0000000100000000/000000010000000000000001', Buffer.from('wal'));
    for (const d of ['srv', 'srv/wals', 'srv/wals/0000000100000000']) {
      const st = statSync(join(root, d));
      assert.equal(st.uid, expected.uid, `${d} owner`);
      assert.equal(st.gid, expected.gid, `${d} group`);
      assert.equal(st.mode & 0o777, 0o700, `${d} mode`);
    }
    // Objects too: private, so the postgres user could not read them if root kept them.
    const object = statSync(join(root, 'srv/wals/0000000100000000/000000010000000000000001'));
    assert.deepEqual([object.uid, object.gid, object.mode & 0o777], [expected.uid, expected.gid, 0o600]);
    await store.close();
  } finally {
    dir.cleanup();
  }
});

test('a streamed put hands each lent read buffer back once its bytes are in the file, and the object holds every byte', async () => {
  const dir = scratchDir('file-lent');
  try {
    const store = await openObjectStore({ destinationPath: `file://${join(dir.path, 'store')}` });
    const lender = new BufferLender(64 * 1024, 2);
    const data = randomBytes(40 * lender.size + 123);
    const used = new Set<ArrayBufferLike>();
    async function* lentChunks(): AsyncIterable<Buffer> {
      for (let at = 0; at < data.length; at += lender.size) {
        const buf = lender.take();
        used.add(buf.buffer);
        yield lender.lend(buf, data.copy(buf, 0, at, at + lender.size));
      }
    }
    await store.put('k/data.tar', Readable.from(lentChunks()));
    assert.ok((await store.getBuffer('k/data.tar')).equals(data), 'every byte stored');
    // Without copied() each of the 41 reads takes a buffer of its own.
    assert.ok(used.size <= 3, `${used.size} read buffers for 41 chunks: they did not come back`);
  } finally {
    dir.cleanup();
  }
});
