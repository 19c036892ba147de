/**
 * The member index of a pgark tar (catalog/tar-index.ts, written by backup/tar-index.ts) against
 * real stores (file://, s3rver, Azurite): for none, lz4 and zstd, every member's recorded stored
 * range, read with a ranged GET and decoded from its restart point, holds exactly that member;
 * small members share frames and a large one starts its own; the object as a whole still decodes
 * with the codec's own CLI (`zstd -d`, `lz4 -d`) and GNU tar lists every member, so the extra
 * frames cost no reader anything. A gzip tar gets no index (gzip has no restart points that
 * Python's tarfile, i.e. barman-cloud-restore, would accept).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ArchiveWriter } from '../../src/backup/archive-writer.js';
import { decompressStream, framedCompressStream, MIN_FRAME, parallelCompressStream, type CodecName, type FramedCodec } from '../../src/codec/index.js';
import { readTarIndex, serializeTarIndex, tarIndexKey, type TarIndex } from '../../src/catalog/tar-index.js';
import { usableIndex } from '../../src/recovery/delta-ranged.js';
import type { BackupObject } from '../../src/recovery/catalog-view.js';
import { Crc32c } from '../../src/io/hash.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import type { SourceEntry } from '../../src/backup/types.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const mtime = new Date('2026-01-02T03:04:05Z');
const LONG = `base/${'d'.repeat(60)}/${'f'.repeat(90)}`;

/** Text of 64 random words: every codec shrinks it a lot, and each member's bytes are its own. */
function content(size: number, seed: number): Buffer {
  const words = Array.from({ length: 64 }, (_, i) => randomBytes(4 + ((i + seed) % 7)).toString('hex'));
  const out = Buffer.alloc(size);
  for (let at = 0, i = seed; at < size; i = (i * 31 + 7) % 64) at += out.write(`${words[i]} `, at);
  return out;
}

const files = new Map<string, Buffer>();
for (let i = 0; i < 40; i++) files.set(`global/small${i}`, content(40 * KiB, i));
files.set('base/1/big', content(3 * MiB, 99));
files.set(LONG, content(5000, 7));
files.set('PG_VERSION', Buffer.from('15\n'));

function entries(): SourceEntry[] {
  const list: SourceEntry[] = [
    { type: 'directory', path: '', mode: 0o700, mtime },
    { type: 'directory', path: 'global', mode: 0o700, mtime },
    { type: 'directory', path: 'base', mode: 0o700, mtime },
    { type: 'directory', path: 'base/1', mode: 0o700, mtime },
    { type: 'directory', path: LONG.slice(0, LONG.lastIndexOf('/')), mode: 0o700, mtime },
  ];
  for (const [path, data] of files) list.push({ type: 'file', path, mode: 0o600, mtime, size: data.length, body: Readable.from([data]) });
  list.push({ type: 'symlink', path: 'pg_link', mode: 0o777, mtime, linkname: 'global' });
  return list;
}

async function drain(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

async function writeTar(store: ObjectStore, key: string, codec: CodecName, framed: boolean): Promise<{ size: number; sha256: string }> {
  const compressor = framed ? framedCompressStream(codec as FramedCodec, { workers: 2 }) : parallelCompressStream(codec, { workers: 2 });
  const w = new ArchiveWriter({ store, key, compressor, partSize: 5 * MiB, queueSize: 2 });
  for (const e of entries()) await w.add(e);
  return w.finish();
}

/** The members of a tar held in memory. */
async function members(data: Buffer): Promise<{ name: string; type: string; body: Buffer; linkname?: string }[]> {
  const out: { name: string; type: string; body: Buffer; linkname?: string }[] = [];
  const x = tar.extract();
  const done = (async () => {
    for await (const e of x) out.push({ name: e.header.name, type: e.header.type ?? '', linkname: e.header.linkname ?? undefined, body: await drain(e as unknown as Readable) });
  })();
  Readable.from([data]).pipe(x);
  await done;
  return out;
}

const KINDS: StoreKind[] = ['file', 's3', 'azure-connection-string'];
const stores = new Map<StoreKind, { ts: TestStore; store: ObjectStore }>();

before(async () => {
  for (const kind of KINDS) {
    const ts = await startStore(kind);
    stores.set(kind, { ts, store: await openObjectStore(ts.resolved()) });
  }
});

after(async () => {
  for (const { ts, store } of stores.values()) {
    await store.close();
    await ts.stop();
  }
});

for (const kind of KINDS) {
  for (const codec of ['none', 'lz4', 'zstd'] as const) {
    test(`${kind}, ${codec}: each member's indexed range, read alone, decodes to that member; frames group small members`, async () => {
      const { store } = stores.get(kind)!;
      const key = `srv/base/20260102T030405/data.tar${codec === 'none' ? '' : codec === 'lz4' ? '.lz4' : '.zst'}`;
      const stored = await writeTar(store, key, codec, true);
      const read = await readTarIndex(store, key);
      assert.ok(read, `an index object beside ${key}`);
      const index: TarIndex = read.index;
      assert.equal(index.object, key.slice(key.lastIndexOf('/') + 1));
      assert.deepEqual({ size: index.size, sha256: index.sha256 }, stored);
      assert.ok(read.bytes < 20 * KiB, `the index is small (${read.bytes} bytes for ${index.members.length} members)`);
      assert.deepEqual(
        index.members.map((m) => m.path),
        entries().map((e) => e.path),
      );

      for (const m of index.members) {
        const body = await drain((await store.get(key, { start: m.from, end: m.to - 1 })).pipe(decompressStream(codec)));
        assert.ok(body.length >= m.end - m.restart, `${m.path}: the range decodes past the member's end`);
        const alone = await members(Buffer.concat([body.subarray(m.header - m.restart, m.end - m.restart), Buffer.alloc(1024)]));
        assert.equal(alone.length, 1, `${m.path}: exactly one member between header and end`);
        assert.equal(alone[0].name.replace(/^\.\//, ''), m.path || '.');
        if (m.type === 'file') {
          const want = files.get(m.path)!;
          assert.ok(alone[0].body.equals(want), `${m.path}: the content`);
          const crc = new Crc32c();
          crc.update(want);
          assert.equal(m.crc32c, crc.digest(), `${m.path}: the CRC-32C backup_manifest lists`);
          assert.equal(m.size, want.length);
        }
        if (m.type === 'symlink') assert.equal(m.link, 'global');
        assert.equal(m.mtime, mtime.getTime() / 1000);
      }

      const big = index.members.find((m) => m.path === 'base/1/big')!;
      const small = index.members.filter((m) => m.path.startsWith('global/small'));
      if (codec === 'none') {
        // Uncompressed: every member is its own exact range.
        for (const m of index.members) assert.deepEqual([m.from, m.to, m.restart], [m.header, m.end, m.header]);
      } else {
        assert.equal(big.restart, big.header, 'a member of MIN_FRAME or more starts its own frame');
        const frames = new Set(small.map((m) => m.restart));
        const smallBytes = small.reduce((n, m) => n + m.end - m.header, 0);
        assert.ok(frames.size >= 2 && frames.size <= Math.ceil(smallBytes / MIN_FRAME) + 1, `${small.length} small members in ${frames.size} frames`);
        // Frame starts are member boundaries: a restart is always some member's header.
        const headers = new Set(index.members.map((m) => m.header));
        for (const m of index.members) assert.ok(headers.has(m.restart) || m.restart === 0);
        const whole = spawnSync(codec, ['-d', '-c'], { input: await drain(await store.get(key)), maxBuffer: 64 * MiB });
        assert.equal(whole.status, 0, `${codec} -d reads the concatenated frames: ${whole.stderr}`);
        const listed = spawnSync('tar', ['-t'], { input: whole.stdout, maxBuffer: 16 * MiB });
        assert.equal(listed.status, 0, String(listed.stderr));
        assert.equal(String(listed.stdout).trim().split('\n').length, entries().length, 'GNU tar lists every member');
      }
    });
  }
}

test('a gzip tar gets no member index: a delta restore streams it whole', async () => {
  const { store } = stores.get('file')!;
  const key = 'srv/base/20260102T030406/data.tar.gz';
  await writeTar(store, key, 'gzip', false);
  assert.equal(await readTarIndex(store, key), undefined);
  assert.equal(await store.head(tarIndexKey(key)), undefined);
  const whole = spawnSync('tar', ['-tz'], { input: await drain(await store.get(key)), maxBuffer: 16 * MiB });
  assert.equal(whole.status, 0);
});

test('an index is used only for the object it names; a damaged or foreign one makes the tar stream whole, saying why', async () => {
  const { store } = stores.get('file')!;
  const key = 'srv/base/20260102T030407/data.tar.zst';
  const stored = await writeTar(store, key, 'zstd', true);
  const object: BackupObject = { key, name: 'data.tar.zst', size: stored.size, codec: 'zstd', encrypted: false, base: 'data', part: 0 };
  const good = await usableIndex(store, object, stored.sha256);
  assert.ok('index' in good, JSON.stringify(good));

  const other = await usableIndex(store, object, 'f'.repeat(64));
  assert.deepEqual(other, { fallback: `data.tar.zst's member index describes another object (data.tar.zst, ${stored.size} bytes)` });
  assert.deepEqual(await usableIndex(store, { ...object, size: stored.size + 1 }, undefined), {
    fallback: `data.tar.zst's member index describes another object (data.tar.zst, ${stored.size} bytes)`,
  });

  const index = good.index;
  await store.put(tarIndexKey(key), serializeTarIndex({ ...index, members: [{ ...index.members[3], to: stored.size + 10 }] }));
  const bad = await usableIndex(store, object, stored.sha256);
  assert.ok('fallback' in bad);
  assert.match(bad.fallback, /^data\.tar\.zst's member index is unreadable \(members\[0\] \(base\/1\): stored range \d+-\d+ of an object of \d+ bytes is invalid\)$/);
  await store.put(tarIndexKey(key), Buffer.from('{"format":'));
  assert.match((await usableIndex(store, object, stored.sha256) as { fallback: string }).fallback, /member index is unreadable/);

  await store.delete([tarIndexKey(key)]);
  assert.deepEqual(await usableIndex(store, object, stored.sha256), { fallback: 'data.tar.zst has no member index (written by barman-cloud, or by an older pgark)' });
  assert.deepEqual(await usableIndex(store, { ...object, encrypted: true }, undefined), { fallback: 'data.tar.zst is age-encrypted, which cannot be read from the middle' });
});
