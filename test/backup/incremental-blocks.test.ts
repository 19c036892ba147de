/**
 * The block map's parts without a server: cutting a body into blocks (a source that grew is cut,
 * one that shrank is padded, as the archive writer stores it), block member names, holder runs,
 * and the file map check that a restore relies on (a version-2 map whose runs or hashes do not
 * cover the file is refused; a version-1 map is still read), and a file's block hashes held in one
 * buffer while it streams. The store is a real file:// store.
 */
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { queryObjects } from 'node:v8';
import { BLOCK_SIZE, blocksOf, hashingEntry } from '../../src/backup/block-map.js';
import { BLOCK_HASH_BYTES, blockEntryPath, blockHolders, holderRuns, parseBlockEntry, readFileMap, type FileMap } from '../../src/catalog/incremental.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startStore, type TestStore } from '../harness/stores.js';

async function* chunks(...parts: number[]): AsyncIterable<Uint8Array> {
  let next = 0;
  for (const n of parts) yield Buffer.from(Array.from({ length: n }, () => next++ % 251));
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

describe('block maps', () => {
  it('cuts a body into blocks across chunk borders, cutting a grown source and padding a shrunk one', async () => {
    const exact = await collect(blocksOf(chunks(3, 7, 1, 9), 20, 8));
    assert.deepEqual(exact.map((b) => b.length), [8, 8, 4]);
    assert.deepEqual(Buffer.concat(exact), Buffer.from(Array.from({ length: 20 }, (_, i) => i)));
    const grown = await collect(blocksOf(chunks(30), 20, 8));
    assert.deepEqual(Buffer.concat(grown), Buffer.from(Array.from({ length: 20 }, (_, i) => i)));
    const shrunk = await collect(blocksOf(chunks(5), 12, 8));
    assert.deepEqual(shrunk.map((b) => b.length), [8, 4]);
    assert.deepEqual(Buffer.concat(shrunk), Buffer.concat([Buffer.from([0, 1, 2, 3, 4]), Buffer.alloc(7)]));
    assert.deepEqual(await collect(blocksOf(chunks(), 0, 8)), []);
  });

  it('holds the block hashes of a file being read in one buffer, not in an object per block', async () => {
    const blocks = 1024;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    async function* body(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < (blocks * BLOCK_SIZE) / chunk.length; i++) yield chunk;
    }
    let hashes = '';
    const entry = hashingEntry({ type: 'file', path: 'base/5/16384', mode: 0o600, mtime: new Date(0), size: blocks * BLOCK_SIZE, body: body() }, (h) => (hashes = h));
    assert.equal(entry.type, 'file');
    const reader = (entry as { body: AsyncIterable<Uint8Array> }).body[Symbol.asyncIterator]();
    // queryObjects collects first: what it counts is what the stream still holds.
    const liveBuffers = () => queryObjects(Buffer, { format: 'count' }) as number;
    const before = liveBuffers();
    for (let i = 0; i < blocks - 1; i++) await reader.next();
    const held = liveBuffers() - before;
    // A Buffer per block kept until the file ends: 1023 here, 8192 for each 1 GiB segment of a table.
    assert.ok(held < 16, `${held} Buffers alive after ${blocks - 1} of ${blocks} blocks`);
    while (!(await reader.next()).done);
    const one = createHash('sha256').update(Buffer.alloc(BLOCK_SIZE, 7)).digest().subarray(0, BLOCK_HASH_BYTES);
    assert.deepEqual(Buffer.from(hashes, 'base64'), Buffer.concat(Array.from({ length: blocks }, () => one)));
  });

  it('names block members so that only they parse as blocks', () => {
    assert.deepEqual(parseBlockEntry(blockEntryPath('base/5/16384.1', 42)), { path: 'base/5/16384.1', block: 42 });
    for (const p of ['base/5/16384', '.pgark-blocks/base/5/x', '.pgark-blocks/7', '.pgark-blocksx/a/1']) assert.equal(parseBlockEntry(p), undefined, p);
  });

  it('keeps each block holder in runs and expands them back', () => {
    const holders = ['A', 'A', 'B', 'A', 'C', 'C'];
    const runs = holderRuns(holders);
    assert.deepEqual(runs, [['A', 2], ['B', 1], ['A', 1], ['C', 2]]);
    const hashes = Buffer.alloc(6 * BLOCK_HASH_BYTES).toString('base64');
    assert.deepEqual(blockHolders({ path: 'f', size: 6 * 8 - 3, mtime: 0, crc32c: 0, holder: 'C', blocks: { size: 8, hashes, runs } }), holders);
    assert.deepEqual(blockHolders({ path: 'f', size: 17, mtime: 0, crc32c: 0, holder: 'A', blocks: { size: 8, hashes } }), ['A', 'A', 'A']);
  });

  describe('file maps in a store', () => {
    let store: TestStore;
    let os: ObjectStore;
    before(async () => {
      store = await startStore('file');
      os = await openObjectStore(store.resolved());
    });
    after(async () => {
      await os?.close();
      await store?.stop();
    });
    const info = { backup_id: '20261205T120000', parent_backup_id: null };
    const put = (map: unknown) => os.put(`srv/base/${info.backup_id}/pgark-files.json`, Buffer.from(JSON.stringify(map)), {});
    const file = { path: 'base/5/1', size: 20, mtime: 1, crc32c: 7, holder: info.backup_id };
    const hashes = (n: number) => Buffer.alloc(n * BLOCK_HASH_BYTES).toString('base64');

    it('reads a version-2 map and a version-1 one', async () => {
      await put({ version: 2, backupId: info.backup_id, parent: null, files: [{ ...file, blocks: { size: 8, hashes: hashes(3), runs: [[info.backup_id, 3]] } }] } satisfies FileMap);
      assert.equal((await readFileMap(os, 'srv', info))!.files[0].blocks!.size, 8);
      await put({ version: 1, backupId: info.backup_id, parent: null, files: [file] });
      assert.equal((await readFileMap(os, 'srv', info))!.files[0].blocks, undefined);
    });

    it('refuses block maps that do not cover the file, naming the object and the entry', async () => {
      for (const blocks of [
        { size: 8, hashes: hashes(2) },
        { size: 8, hashes: hashes(3), runs: [[info.backup_id, 2]] },
        { size: 0, hashes: '' },
        { size: 8, hashes: hashes(3), runs: [[info.backup_id, 0], ['x', 3]] },
      ]) {
        await put({ version: 2, backupId: info.backup_id, parent: null, files: [{ ...file, blocks }] });
        await assert.rejects(readFileMap(os, 'srv', info), (err: Error) => {
          assert.match(err.message, /srv\/base\/20261205T120000\/pgark-files.json is not a pgark file map: malformed entry .*base\/5\/1/);
          return true;
        });
      }
      await put({ version: 3, backupId: info.backup_id, parent: null, files: [] });
      await assert.rejects(readFileMap(os, 'srv', info), /unknown version/);
    });
  });
});
