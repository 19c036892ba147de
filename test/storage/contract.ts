/**
 * The object-store contract, run unchanged on file://, s3rver and Azurite (test files
 * file.test.ts, s3.test.ts, azure.test.ts). 'basic' runs the round trips and the error
 * classification (used for the extra credential forms); 'full' adds metadata, ranges, big objects,
 * listing/deleting past a page and connections cut mid-transfer.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient } from '@azure/storage-blob';
import type { ResolvedObjectStore } from '../../src/config/types.js';
import { NotFoundError } from '../../src/util/errors.js';
import { openObjectStore } from '../../src/storage/open.js';
import { rangedRead } from '../../src/storage/ranged.js';
import { classifyStorageError, StorageError } from '../../src/storage/errors.js';
import type { GetOptions, ObjectStore, ListEntry } from '../../src/storage/types.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { startProxy } from '../harness/proxy.js';
import { freePort } from '../harness/ports.js';

const MiB = 1024 * 1024;
const BIG_OBJECT_BYTES = 200 * MiB;

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function sha256Of(stream: Readable): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    hash.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `total` bytes that do not repeat at any 1 MiB boundary, generated lazily (never held in memory). */
function patternedStream(total: number): Readable {
  const block = randomBytes(MiB);
  return Readable.from(
    (function* () {
      for (let offset = 0, i = 0; offset < total; offset += MiB, i++) {
        const chunk = Buffer.from(block.subarray(0, Math.min(MiB, total - offset)));
        chunk.writeUInt32BE(i, 0);
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

/** Hashes what passes through. */
function hashingTap(): Transform & { digest(): string } {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  }) as Transform & { digest(): string };
  tap.digest = () => hash.digest('hex');
  return tap;
}

async function listAll(store: ObjectStore, prefix: string, delimiter?: '/', startAfter?: string): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for await (const e of store.list(prefix, { delimiter, startAfter })) out.push(e);
  return out;
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

/** Blob/object name of a key in the test store (its random prefix + key). */
function storedName(ts: TestStore, key: string): string {
  const prefix = ts.destinationPath.split('/').pop();
  return `${prefix}/${key}`;
}

/** The same store reached through a TCP proxy on proxyPort. */
function viaProxy(ts: TestStore, proxyPort: number): ResolvedObjectStore {
  const r = ts.resolved();
  if (ts.s3rver) {
    r.endpointURL = r.endpointURL!.replace(`:${ts.s3rver.port}`, `:${proxyPort}`);
  } else if (ts.azurite) {
    r.destinationPath = r.destinationPath.replace(`:${ts.azurite.port}/`, `:${proxyPort}/`);
    r.azure = { storageAccount: ts.azurite.account, storageKey: ts.azurite.accountKey };
  }
  return r;
}

/** Variants of the store's resolved config that must fail with a given classification. */
function brokenVariants(ts: TestStore, closedPort: number): { wrongKey: ResolvedObjectStore; missingBucket: ResolvedObjectStore; unreachable: ResolvedObjectStore } {
  const wrongKey = ts.resolved();
  const missingBucket = ts.resolved();
  const unreachable = ts.resolved();
  if (ts.s3rver) {
    // The harness's front verifies signatures, so a wrong secret is refused like on AWS.
    wrongKey.s3 = { ...wrongKey.s3, secretAccessKey: 'not-the-secret' };
    missingBucket.destinationPath = 's3://no-such-bucket/x';
    unreachable.endpointURL = unreachable.endpointURL!.replace(`:${ts.s3rver.port}`, `:${closedPort}`);
  } else if (ts.azurite) {
    const az = ts.azurite;
    const badKey = randomBytes(64).toString('base64');
    if (ts.kind === 'azure-connection-string') {
      wrongKey.azure = { connectionString: az.connectionString.replace(az.accountKey, badKey) };
      missingBucket.azure = { connectionString: az.connectionString };
    } else if (ts.kind === 'azure-sas') {
      wrongKey.azure = { ...wrongKey.azure, storageSasToken: az.sasToken.replace(/sig=[^&]+/, `sig=${encodeURIComponent(badKey)}`) };
    } else {
      wrongKey.azure = { ...wrongKey.azure, storageKey: badKey };
    }
    missingBucket.destinationPath = missingBucket.destinationPath.replace(`/${az.container}/`, '/no-such-container/');
    unreachable.destinationPath = unreachable.destinationPath.replace(`:${az.port}/`, `:${closedPort}/`);
    if (ts.kind === 'azure-connection-string') unreachable.azure = { connectionString: az.connectionString.replace(`:${az.port}/`, `:${closedPort}/`) };
  }
  return { wrongKey, missingBucket, unreachable };
}

/** Tags as the provider stored them, read with the provider's own SDK; undefined where the test server has none. */
async function storedTags(ts: TestStore, key: string): Promise<Record<string, string> | undefined> {
  if (!ts.azurite) return undefined;
  const service = BlobServiceClient.fromConnectionString(ts.azurite.connectionString);
  const res = await service.getContainerClient(ts.azurite.container).getBlobClient(storedName(ts, key)).getTags();
  return res.tags;
}

/** `store` with every get() recorded (its range) and the most GETs open at once counted. */
function watchedGets(store: ObjectStore): { store: ObjectStore; ranges: [number, number | undefined][]; mostOpen(): number } {
  const ranges: [number, number | undefined][] = [];
  let open = 0;
  let most = 0;
  const watched = new Proxy(store, {
    get(target, prop) {
      if (prop === 'get') {
        return async (key: string, opts: GetOptions = {}) => {
          ranges.push([opts.start ?? 0, opts.end]);
          most = Math.max(most, ++open);
          const body = await target.get(key, opts).catch((e: unknown) => {
            open--;
            throw e;
          });
          // Open until its last byte is read or it is destroyed (its 'close' may come a tick later).
          let closed = false;
          const done = () => {
            if (!closed) open--;
            closed = true;
          };
          body.once('end', done);
          body.once('close', done);
          const destroy = body.destroy.bind(body);
          body.destroy = (err?: Error) => {
            done();
            return destroy(err);
          };
          return body;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: watched, ranges, mostOpen: () => most };
}

/** Resolves after the time `bytes` take at `bytesPerSecond`. */
const transferTime = (bytes: number, bytesPerSecond: number) => sleep((bytes / bytesPerSecond) * 1000);

/**
 * `store` whose GETs deliver at about `bytesPerSecond` each, paced as they are read: a connection
 * the reader waits on whenever it reads faster than that, with no buffer filling meanwhile.
 */
function pacedGets(store: ObjectStore, bytesPerSecond: number): ObjectStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'get') {
        return async (key: string, opts: GetOptions = {}) => {
          const body = await target.get(key, opts);
          return Readable.from(
            (async function* () {
              for await (const c of body) {
                await transferTime((c as Buffer).length, bytesPerSecond);
                yield c as Buffer;
              }
            })(),
            { objectMode: false },
          );
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Reads `stream` at about `bytesPerSecond`, as a reader slower than its connection would. */
async function drainAt(stream: Readable, bytesPerSecond: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) {
    chunks.push(c as Buffer);
    await transferTime((c as Buffer).length, bytesPerSecond);
  }
  return Buffer.concat(chunks);
}

export function runContract(kind: StoreKind, level: 'basic' | 'full'): void {
  describe(`object store contract on ${kind}`, () => {
    let ts: TestStore;
    let store: ObjectStore;

    before(async () => {
      ts = await startStore(kind);
      store = await openObjectStore(ts.resolved());
    });
    after(async () => {
      await store?.close();
      await ts?.stop();
    });

    test('put/get/head of a Buffer, overwrite, missing keys', async () => {
      assert.equal(store.provider, ts.provider);
      const data = randomBytes(100_000);
      assert.deepEqual(await store.put('rt/a.bin', data), { status: 'created', size: data.length });
      assert.ok((await store.getBuffer('rt/a.bin')).equals(data));
      const info = await store.head('rt/a.bin');
      assert.equal(info?.key, 'rt/a.bin');
      assert.equal(info?.size, data.length);
      assert.ok(info?.lastModified instanceof Date);
      const replacement = Buffer.from('replaced');
      await store.put('rt/a.bin', replacement);
      assert.ok((await store.getBuffer('rt/a.bin')).equals(replacement));
      assert.equal(await store.head('rt/missing'), undefined);
      await assert.rejects(store.getBuffer('rt/missing'), NotFoundError);
      await assert.rejects(store.get('rt/missing'), NotFoundError);
      // An empty object is an object.
      await store.put('rt/empty', Buffer.alloc(0));
      assert.equal((await store.getBuffer('rt/empty')).length, 0);
      assert.equal((await store.head('rt/empty'))?.size, 0);
    });

    test('stream put and get round trip with progress', async () => {
      const data = randomBytes(3 * MiB + 17);
      let progress = 0;
      const res = await store.put('rt/stream.bin', Readable.from([data.subarray(0, MiB), data.subarray(MiB)]), { onProgress: (b) => (progress = b) });
      assert.deepEqual(res, { status: 'created', size: data.length });
      assert.equal(progress, data.length);
      assert.equal(sha(await drain(await store.get('rt/stream.bin'))), sha(data));
    });

    test('ifAbsent creates once and never overwrites', async () => {
      const first = Buffer.from('first version');
      assert.equal((await store.put('rt/once', first, { ifAbsent: true })).status, 'created');
      const again = await store.put('rt/once', Buffer.from('second'), { ifAbsent: true });
      assert.deepEqual(again, { status: 'exists', size: first.length });
      const streamed = await store.put('rt/once', Readable.from([Buffer.from('third')]), { ifAbsent: true });
      assert.equal(streamed.status, 'exists');
      assert.ok((await store.getBuffer('rt/once')).equals(first));
      if (store.limits.conditionalCreate) {
        // Racing creators: exactly one wins and its bytes are the object.
        const bodies = Array.from({ length: 6 }, (_, i) => Buffer.from(`racer ${i} `.repeat(1000)));
        const results = await Promise.all(bodies.map((b) => store.put('rt/race', b, { ifAbsent: true })));
        const winners = results.map((r, i) => (r.status === 'created' ? i : -1)).filter((i) => i >= 0);
        assert.equal(winners.length, 1, `winners: ${winners}`);
        assert.ok((await store.getBuffer('rt/race')).equals(bodies[winners[0]]));
      }
    });

    test('basic listing and delete', async () => {
      await store.put('ls/one', Buffer.from('1'));
      await store.put('ls/two', Buffer.from('22'));
      await store.put('ls/sub/three', Buffer.from('333'));
      const flat = await listAll(store, 'ls/');
      assert.deepEqual(flat.map((e) => [e.object?.key, e.object?.size]), [['ls/one', 1], ['ls/sub/three', 3], ['ls/two', 2]]);
      const level = await listAll(store, 'ls/', '/');
      assert.deepEqual(level.map((e) => e.object?.key ?? e.prefix), ['ls/one', 'ls/sub/', 'ls/two']);
      // A prefix that is not a "directory" matches partial names.
      assert.deepEqual((await listAll(store, 'ls/t')).map((e) => e.object?.key), ['ls/two']);
      // startAfter: only keys after it, whether or not it names an object.
      assert.deepEqual((await listAll(store, 'ls/', undefined, 'ls/one')).map((e) => e.object?.key), ['ls/sub/three', 'ls/two']);
      assert.deepEqual((await listAll(store, 'ls/', undefined, 'ls/sub/x')).map((e) => e.object?.key), ['ls/two']);
      assert.deepEqual((await listAll(store, 'ls/', '/', 'ls/one')).map((e) => e.object?.key ?? e.prefix), ['ls/sub/', 'ls/two']);
      assert.deepEqual(await listAll(store, 'ls/', undefined, 'ls/two'), []);
      await store.delete(['ls/one', 'ls/sub/three', 'ls/never-existed']);
      assert.deepEqual((await listAll(store, 'ls/')).map((e) => e.object?.key), ['ls/two']);
      assert.deepEqual(await listAll(store, 'nothing-here/'), []);
    });

    if (hasNetwork(kind)) {
      test('wrong key, missing bucket and unreachable endpoint are told apart', async () => {
        const broken = brokenVariants(ts, await freePort());
        for (const [name, resolved, expected] of [
          ['wrong key', broken.wrongKey, 'auth'],
          ['missing bucket', broken.missingBucket, 'not-found-bucket'],
          ['unreachable', broken.unreachable, 'unreachable'],
        ] as const) {
          const s = await openObjectStore(resolved);
          try {
            for (const [op, run] of [
              ['put', () => s.put('probe', Buffer.from('x'))],
              ['list', () => listAll(s, '')],
              ['head', () => s.head('probe')],
            ] as const) {
              const err = await (run as () => Promise<unknown>)().then(() => undefined, (e: unknown) => e);
              assert.ok(err instanceof StorageError, `${name}/${op}: expected a StorageError, got ${err}`);
              assert.equal(classifyStorageError(err), expected, `${name}/${op}: ${(err as Error).message}`);
              assert.match((err as Error).message, new RegExp(`^${op}`));
              for (const secret of Object.values(ts.secretValues)) {
                // The account name is part of destinationPath, so it is no secret.
                if (secret.length > 8 && !ts.destinationPath.includes(secret)) assert.ok(!(err as Error).message.includes(secret), `${name}/${op} message leaks a secret`);
              }
            }
          } finally {
            await s.close();
          }
        }
      });
    }

    if (level === 'basic') return;

    test('metadata and tags round trip where the provider keeps them', async () => {
      await store.put('meta/obj', Buffer.from('x'), { metadata: { origin: 'pgark', segment: '000000010000000000000001' }, tags: { team: 'db', env: 'test' } });
      const info = await store.head('meta/obj');
      if (store.limits.metadata) assert.deepEqual(info?.metadata, { origin: 'pgark', segment: '000000010000000000000001' });
      else assert.equal(info?.metadata, undefined);
      const tags = await storedTags(ts, 'meta/obj');
      if (tags !== undefined) assert.deepEqual(tags, { team: 'db', env: 'test' });
    });

    test('ranged get', async () => {
      const data = randomBytes(2 * MiB);
      await store.put('range/obj', data);
      assert.ok((await drain(await store.get('range/obj', { start: 1000, end: 1999 }))).equals(data.subarray(1000, 2000)));
      assert.ok((await drain(await store.get('range/obj', { start: MiB }))).equals(data.subarray(MiB)));
      assert.ok((await drain(await store.get('range/obj', { start: 7, end: 7 }))).equals(data.subarray(7, 8)));
      assert.ok((await drain(await store.get('range/obj', { start: MiB, end: 10 * MiB }))).equals(data.subarray(MiB)));
    });

    test('an object read over several connections comes back whole and in order, the ranges taking over at the cut', async () => {
      const data = randomBytes(5 * MiB + 4321);
      await store.put('lanes/obj', data);
      const watched = watchedGets(store);
      const cut = MiB + 12345;
      const whole = await drain(rangedRead(watched.store, 'lanes/obj', data.length, { lanes: 3, partBytes: MiB, splitAt: cut }));
      assert.equal(sha(whole), sha(data));
      assert.deepEqual(watched.ranges, [
        [0, undefined],
        [cut, cut + MiB - 1],
        [cut + MiB, cut + 2 * MiB - 1],
        [cut + 2 * MiB, cut + 3 * MiB - 1],
        [cut + 3 * MiB, undefined],
      ]);
      assert.ok(watched.mostOpen() <= 3, `at most 3 GETs open at once, saw ${watched.mostOpen()}`);
      // An object that is not the listed size fails instead of being read short or long.
      await assert.rejects(drain(rangedRead(store, 'lanes/obj', data.length + 1, { lanes: 3, partBytes: MiB, splitAt: cut })), /returned \d+ of \d+ bytes/);
      await assert.rejects(drain(rangedRead(store, 'lanes/obj', data.length - 1, { lanes: 3, partBytes: MiB })), /returned (more than \d+|\d+ of \d+) bytes/);
    });

    test('a reader slower than its one connection reads the object through that connection alone', async () => {
      const data = randomBytes(3 * MiB);
      await store.put('lanes/slow-reader', data);
      const watched = watchedGets(store);
      const whole = await drainAt(rangedRead(watched.store, 'lanes/slow-reader', data.length, { lanes: 4, partBytes: 512 * 1024 }), 4 * MiB);
      assert.equal(sha(whole), sha(data));
      assert.deepEqual(watched.ranges, [[0, undefined]]);
    });

    // The judging is the reader's, whatever the provider: once, on the cheapest store.
    if (kind === 'file') {
      test('a reader slower than its connection at first, then waiting on it, splits as soon as it waits', async () => {
        const data = randomBytes(4 * MiB);
        await store.put('lanes/slow-then-fast', data);
        const watched = watchedGets(pacedGets(store, 4e6));
        const chunks: Buffer[] = [];
        let read = 0;
        // Its first MiB read at 1 MB/s (creating small files, say), the rest as fast as the 4 MB/s link gives it.
        for await (const c of rangedRead(watched.store, 'lanes/slow-then-fast', data.length, { lanes: 3, partBytes: 256 * 1024 })) {
          chunks.push(c as Buffer);
          read += (c as Buffer).length;
          if (read <= MiB) await transferTime((c as Buffer).length, 1e6);
        }
        assert.equal(sha(Buffer.concat(chunks)), sha(data));
        const cut = watched.ranges[1]?.[0];
        assert.ok(cut !== undefined && cut <= 2 * MiB, `waiting from its second MiB on, the reader split at ${cut ?? 'no point'}: ${JSON.stringify(watched.ranges)}`);
      });
    }

    test('listing past 1000 keys, flat and with a delimiter, then batched deletes', async () => {
      // One object per "directory": a flat listing pages through 1010 objects, a delimiter listing through 1010 prefixes.
      const keys = Array.from({ length: 1010 }, (_, i) => `many/d${String(i).padStart(5, '0')}/x`);
      await inParallel(keys, 16, (k) => store.put(k, Buffer.from(k)));
      await store.put('many/top', Buffer.from('top'));
      const flat = await listAll(store, 'many/');
      assert.deepEqual(flat.map((e) => e.object?.key), [...keys, 'many/top']);
      const oneLevel = await listAll(store, 'many/', '/');
      assert.deepEqual(oneLevel.map((e) => e.prefix ?? e.object?.key), [...keys.map((k) => k.slice(0, -1)), 'many/top']);
      assert.deepEqual(oneLevel.filter((e) => e.object).map((e) => e.object!.size), [3]);
      await store.delete([...keys, 'many/not-there', 'many/top']);
      assert.deepEqual(await listAll(store, 'many/'), []);
    });

    test(`a ${BIG_OBJECT_BYTES / MiB} MB object streams up and down with bounded memory`, async () => {
      const tapIn = hashingTap();
      const upStart = Date.now();
      const put = await store.put('big/object.bin', patternedStream(BIG_OBJECT_BYTES).pipe(tapIn), { partSize: 16 * MiB, queueSize: 4 });
      const upMs = Date.now() - upStart;
      assert.deepEqual(put, { status: 'created', size: BIG_OBJECT_BYTES });
      assert.equal((await store.head('big/object.bin'))?.size, BIG_OBJECT_BYTES);
      const downStart = Date.now();
      const out = await sha256Of(await store.get('big/object.bin'));
      const downMs = Date.now() - downStart;
      assert.equal(out.bytes, BIG_OBJECT_BYTES);
      assert.equal(out.hex, tapIn.digest());
      console.log(`[storage] ${kind}: ${BIG_OBJECT_BYTES / MiB} MB upload ${upMs} ms (${((BIG_OBJECT_BYTES / MiB) / (upMs / 1000)).toFixed(0)} MB/s), download ${downMs} ms (${((BIG_OBJECT_BYTES / MiB) / (downMs / 1000)).toFixed(0)} MB/s), rss ${Math.round(process.memoryUsage().rss / MiB)} MiB`);
      await store.delete(['big/object.bin']);
      assert.equal(await store.head('big/object.bin'), undefined);
    });

    if (hasNetwork(kind)) {
      test('sequential puts reuse keep-alive connections', async () => {
        const proxy = await startProxy(ts.s3rver?.port ?? ts.azurite!.port);
        const via = await openObjectStore(viaProxy(ts, proxy.port));
        try {
          for (let i = 0; i < 40; i++) await via.put(`reuse/${i}`, Buffer.from(String(i)));
          assert.ok(proxy.accepted <= 2, `40 puts opened ${proxy.accepted} connections`);
        } finally {
          await via.close();
          await proxy.close();
        }
      });
    }

    if (hasNetwork(kind)) {
      test('a reader waiting on a slow link reads the rest over more connections', async () => {
        const data = randomBytes(6 * MiB);
        await store.put('lanes/slow-link', data);
        const proxy = await startProxy(ts.s3rver?.port ?? ts.azurite!.port, { shape: { rttMs: 5, bytesPerSecond: 4e6 } });
        const via = await openObjectStore(viaProxy(ts, proxy.port));
        try {
          const watched = watchedGets(via);
          const whole = await drain(rangedRead(watched.store, 'lanes/slow-link', data.length, { lanes: 3, partBytes: MiB }));
          assert.equal(sha(whole), sha(data));
          assert.ok(watched.ranges.length > 1, `the reader waited on one 4 MB/s connection, yet no range was added: ${JSON.stringify(watched.ranges)}`);
          assert.ok(watched.mostOpen() <= 3, `at most 3 GETs open at once, saw ${watched.mostOpen()}`);
        } finally {
          await via.close();
          await proxy.close();
        }
      });
    }

    if (hasNetwork(kind)) {
      test('a download survives connections cut mid-stream (resumes from the last byte)', async () => {
        const data = randomBytes(12 * MiB);
        await store.put('cut/obj', data);
        const target = ts.s3rver?.port ?? ts.azurite!.port;
        const proxy = await startProxy(target);
        const via = await openObjectStore(viaProxy(ts, proxy.port));
        try {
          proxy.cutAfter(3 * MiB);
          const whole = await drain(await via.get('cut/obj'));
          assert.equal(proxy.cuts, 1);
          assert.equal(sha(whole), sha(data));
          proxy.cutAfter(2 * MiB);
          const part = await drain(await via.get('cut/obj', { start: 1234, end: 9 * MiB }));
          assert.equal(proxy.cuts, 2);
          assert.ok(part.equals(data.subarray(1234, 9 * MiB + 1)));
          // An upload cut mid-request is retried by the shared retry policy.
          const upload = randomBytes(4 * MiB);
          proxy.cutAfter(MiB);
          assert.equal((await via.put('cut/up', upload)).status, 'created');
          assert.equal(proxy.cuts, 3);
          assert.equal(sha(await store.getBuffer('cut/up')), sha(upload));
        } finally {
          await via.close();
          await proxy.close();
        }
      });
    }

    if (hasNetwork(kind)) {
      test('a resumed download refuses to splice in a newer version of the object', async () => {
        // Big enough that most of it is still on the server when the first chunk arrives.
        const size = 40 * MiB;
        await store.put('cut/changing', Buffer.alloc(size, 1));
        const proxy = await startProxy(ts.s3rver?.port ?? ts.azurite!.port);
        const via = await openObjectStore(viaProxy(ts, proxy.port));
        try {
          const chunks = (await via.get('cut/changing'))[Symbol.asyncIterator]();
          assert.equal((await chunks.next()).done, false);
          await store.put('cut/changing', Buffer.alloc(size, 2));
          proxy.cutAll();
          await assert.rejects(async () => {
            while (!(await chunks.next()).done);
          }, /object changed during download/);
        } finally {
          await via.close();
          await proxy.close();
        }
      });
    }
  });
}

function hasNetwork(kind: StoreKind): boolean {
  return kind !== 'file';
}
