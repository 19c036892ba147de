/**
 * A WAL push holds chunks, not segments: against real stores (file://, s3rver, Azurite), the body
 * a store receives is a stream whose every chunk is at most CHUNK bytes, whose length is the one
 * announced up front (S3 also gets its Content-MD5 up front), and whose spill file is gone after
 * the push; what is stored reads back as the segment. A streamed S3 PUT whose connection resets
 * midway (a real reset by the fault proxy in front of s3rver) is sent again from a fresh stream.
 * Parallel S3 PUTs send reused chunks (FileBody), and every object still holds its own file's bytes.
 * The figure this bounds (a process's peak RSS) is measured by the benches, not asserted here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { startStore, type TestStore } from '../harness/stores.js';
import { matchers, startHttpFaultProxy } from '../harness/http-faults.js';
import { scratchDir } from '../harness/tmp.js';
import { CHUNK, FileBody } from '../../src/codec/encode-file.js';
import { decodeBuffer, splitCodecSuffix, type CodecName } from '../../src/codec/index.js';
import { CompressionPool } from '../../src/codec/pool.js';
import { digestOf } from '../../src/io/hash.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore, PutOptions } from '../../src/storage/types.js';
import { archiveWalFile, EmptyArchiveGate } from '../../src/wal/archive.js';
import type { WalTarget } from '../../src/wal/target.js';
import { craftSegment } from './helpers.js';

interface SeenPut {
  key: string;
  streamed: boolean;
  bytes: number;
  largestChunk: number;
  opts: PutOptions;
}

/** The store, with what each put() body carried recorded as it flows into the real driver. */
function recordingPuts(store: ObjectStore): { store: ObjectStore; puts: SeenPut[] } {
  const puts: SeenPut[] = [];
  const recorded: ObjectStore = Object.create(store);
  recorded.put = (key, body, opts = {}) => {
    const seen: SeenPut = { key, streamed: !Buffer.isBuffer(body), bytes: 0, largestChunk: 0, opts };
    puts.push(seen);
    if (Buffer.isBuffer(body)) return store.put(key, body, opts);
    const watch = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen.bytes += chunk.length;
        seen.largestChunk = Math.max(seen.largestChunk, chunk.length);
        cb(null, chunk);
      },
    });
    (body as Readable).on('error', (e) => watch.destroy(e)).pipe(watch);
    return store.put(key, watch, opts);
  };
  return { store: recorded, puts };
}

const segment = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

for (const kind of ['file', 's3', 'azure-connection-string'] as const) {
  describe(`a WAL push streams in chunks (${kind})`, () => {
    let testStore: TestStore;
    let client: ObjectStore;
    const dir = scratchDir(`push-memory-${kind}`);
    const pgWal = join(dir.path, 'pg_wal');
    const spill = join(dir.path, 'spill');
    const pool = new CompressionPool(1);
    const gate = new EmptyArchiveGate(dir.path);

    before(async () => {
      mkdirSync(pgWal, { recursive: true });
      mkdirSync(spill, { recursive: true });
      testStore = await startStore(kind);
      client = await openObjectStore(testStore.resolved('unused'));
    });
    after(async () => {
      await pool.close();
      await client.close();
      await testStore.stop();
      dir.cleanup();
    });

    // [codec, a pool is offered, the pool's worker is used]: gzip deflates on libuv's threads, never on the worker.
    const cases: [CodecName, boolean, boolean][] = [
      ['none', false, false],
      ['zstd', false, false],
      ['gzip', true, false],
      ['zstd', true, true],
    ];
    for (const [i, [compression, withPool, onWorker]] of cases.entries()) {
      test(`${compression}${onWorker ? ' on the worker' : ' in this process'}${withPool ? ' (pool offered)' : ''}: a stream of chunks of at most ${CHUNK} bytes, with its length (and S3's MD5) known up front; no spill file left`, async () => {
        const workersBefore = pool.workers;
        const { store, puts } = recordingPuts(client);
        const name = segment(i + 1);
        const data = craftSegment(name);
        writeFileSync(join(pgWal, name), data);
        const target: WalTarget = { store, serverName: `push-${compression}`, compression, maxParallel: 1, skipEmptyCheck: true, description: kind };
        const r = await archiveWalFile(target, join(pgWal, name), gate, { pool: withPool ? pool : undefined, spillDir: spill });
        assert.equal(r.status, 'stored');
        assert.equal(pool.workers, onWorker ? 1 : workersBefore, onWorker ? 'encoded on the worker' : 'no worker started');
        assert.equal(puts.length, 1);
        const [put] = puts;
        assert.ok(put.streamed, 'the body is a stream, not a buffer holding the segment');
        assert.ok(put.largestChunk > 0 && put.largestChunk <= CHUNK, `largest chunk ${put.largestChunk} bytes`);
        assert.equal(put.bytes, put.opts.contentLength, 'the announced length is what flowed');
        if (kind === 's3') assert.match(put.opts.contentMD5 ?? '', /^[A-Za-z0-9+/]{22}==$/);
        assert.deepEqual(readdirSync(spill), [], 'the spill file is removed once stored');
        const stored = await decodeBuffer(splitCodecSuffix(r.key), await client.getBuffer(r.key), undefined, r.key);
        assert.ok(stored.equals(data), 'the stored object reads back as the segment');
        // Same bytes again: found stored, compared by streaming, nothing uploaded.
        const again = await archiveWalFile(target, join(pgWal, name), gate, { pool: withPool ? pool : undefined, spillDir: spill });
        assert.equal(again.status, 'exists');
        assert.equal(puts.length, 1);
        assert.deepEqual(readdirSync(spill), []);
      });
    }
  });
}

describe('a streamed S3 PUT survives a connection reset', () => {
  let testStore: TestStore;
  const dir = scratchDir('push-reset');
  before(async () => {
    mkdirSync(join(dir.path, 'pg_wal'), { recursive: true });
    testStore = await startStore('s3');
  });
  after(async () => {
    await testStore.stop();
    dir.cleanup();
  });

  test('the PUT reset after 2 MiB of its body is sent again from the first byte, and the object is whole', async () => {
    const proxy = await startHttpFaultProxy(testStore.s3rver!.port);
    const store = await openObjectStore({ ...testStore.resolved('unused'), endpointURL: proxy.endpoint });
    try {
      proxy.add({ match: matchers.put, fault: { kind: 'reset-request', afterBytes: 2 * CHUNK }, times: 1 });
      const name = segment(9);
      const data = craftSegment(name);
      const path = join(dir.path, 'pg_wal', name);
      writeFileSync(path, data);
      const target: WalTarget = { store, serverName: 'reset', compression: 'none', maxParallel: 1, skipEmptyCheck: true, description: 's3' };
      const r = await archiveWalFile(target, path, new EmptyArchiveGate(dir.path));
      assert.equal(r.status, 'stored');
      assert.equal(proxy.injected, 1, 'the first PUT was cut');
      assert.ok((await store.getBuffer(r.key)).equals(readFileSync(path)));
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

describe('parallel streamed S3 PUTs from reused chunks', () => {
  let testStore: TestStore;
  let store: ObjectStore;
  const dir = scratchDir('push-reuse');
  before(async () => {
    testStore = await startStore('s3');
    store = await openObjectStore(testStore.resolved('unused'));
  });
  after(async () => {
    await store.close();
    await testStore.stop();
    dir.cleanup();
  });

  test('8 files of 16 MiB at once, twice over: each PUT sends reused chunks, and each object reads back as its own file', async () => {
    for (const round of [1, 2]) {
      const files = Array.from({ length: 8 }, (_, i) => {
        const path = join(dir.path, `f${round}-${i}`);
        const data = randomBytes(16 * 1024 * 1024 + i * 1000);
        writeFileSync(path, data);
        return { path, data, key: `reuse/${round}/${i}`, body: new FileBody(path) };
      });
      await Promise.all(
        files.map((f) => store.put(f.key, f.body, { contentLength: f.data.length, contentMD5: digestOf('md5', f.data, 'base64'), reopen: () => new FileBody(f.path) })),
      );
      for (const f of files) {
        assert.ok(f.body.reusedChunks, `${f.key} was sent from reused chunks`);
        assert.ok((await store.getBuffer(f.key)).equals(f.data), `${f.key} holds its own file's bytes`);
      }
    }
  });
});
