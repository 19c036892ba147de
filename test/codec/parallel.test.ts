import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import tar from 'tar-stream';
import snappy from 'snappy';
import { decompressStream, framedCompressStream, parallelCompressStream, type CodecName } from '../../src/codec/index.js';
import { runTool, sampleData, through } from './helpers.js';
import { BufferLender, copied } from '../../src/io/lent.js';
import { GZIP_LEVEL } from '../../src/codec/streams.js';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const BLOCK = 256 * 1024;
const data = sampleData(1 << 20, 3 << 20);

async function referenceDecode(codec: CodecName, input: Buffer): Promise<Buffer> {
  if (codec === 'snappy') {
    const d = new snappy.Decompressor();
    const head = d.update(input);
    return Buffer.concat([head, await d.finish()]);
  }
  const tool = { gzip: 'gzip', bzip2: 'bzip2', xz: 'xz', zstd: 'zstd', lz4: 'lz4' }[codec as string]!;
  return runTool(tool, ['-d', '-c', '-q'], input);
}

const codecs: CodecName[] = ['gzip', 'snappy', 'lz4', 'zstd', 'xz', 'bzip2'];

for (const codec of codecs) {
  test(`parallel ${codec}: output decodes with the reference decoder and with ours`, async () => {
    const compressed = await through(data, [parallelCompressStream(codec, { workers: 3, blockSize: BLOCK })]);
    assert.ok(compressed.length < data.length);
    assert.ok((await referenceDecode(codec, compressed)).equals(data), 'reference decoder disagrees');
    assert.ok((await through(compressed, [decompressStream(codec)])).equals(data), 'our decoder disagrees');
  });

  test(`parallel ${codec}: empty, sub-block and exact-multiple inputs`, async () => {
    for (const input of [Buffer.alloc(0), data.subarray(0, 1000), data.subarray(0, 4 * BLOCK)]) {
      const compressed = await through(input, [parallelCompressStream(codec, { workers: 2, blockSize: BLOCK })]);
      assert.ok((await referenceDecode(codec, compressed)).equals(input), `reference decode of ${input.length} bytes`);
      assert.ok((await through(compressed, [decompressStream(codec)])).equals(input), `our decode of ${input.length} bytes`);
    }
  });
}

test('parallel block codecs reuse their block buffers without touching output still queued: a slow consumer gets every byte right', async () => {
  // Many more blocks than buffers (workers + 2), and pieces of output waiting in the stream's queue while their blocks' buffers refill.
  for (const codec of ['gzip', 'snappy', 'lz4'] as const) {
    const compressed = await through(data, [parallelCompressStream(codec, { workers: 2, blockSize: 64 * 1024 })], true);
    assert.ok((await referenceDecode(codec, compressed)).equals(data), `${codec}: reference decode`);
  }
});

test('lent read buffers come back once the compressor (gzip blocks, zstd, framed zstd) copied every byte, and refilling them leaves the output intact', async () => {
  const lender = new BufferLender(64 * 1024, 4);
  const compressors = { gzip: () => parallelCompressStream('gzip', { workers: 2, blockSize: 100_000 }), zstd: () => parallelCompressStream('zstd', { workers: 2 }), 'framed zstd': () => framedCompressStream('zstd', { workers: 2 }) };
  for (const [name, compressor] of Object.entries(compressors)) {
    const used = new Set<ArrayBufferLike>();
    let chunks = 0;
    async function* lentChunks(): AsyncIterable<Buffer> {
      for (let at = 0; at < data.length; at += lender.size, chunks++) {
        const buf = lender.take();
        used.add(buf.buffer);
        const n = data.copy(buf, 0, at, at + lender.size);
        yield lender.lend(buf, n);
      }
    }
    const out: Buffer[] = [];
    const sink = new Writable({ highWaterMark: 1024, write: (c: Buffer, _e, cb) => (out.push(c), setImmediate(cb)) });
    await pipeline(Readable.from(lentChunks()), compressor(), sink);
    const codec = name === 'gzip' ? 'gzip' : 'zstd';
    assert.ok((await referenceDecode(codec, Buffer.concat(out))).equals(data), `${name}: round trip`);
    assert.ok(used.size < chunks / 2, `${name}: ${used.size} buffers for ${chunks} chunks: they did not come back`);
  }

  // Bytes left uncopied (a cut chunk): that buffer is never lent again.
  const buf = lender.take();
  const chunk = lender.lend(buf, 1000);
  copied(chunk.subarray(0, 999));
  for (let i = 0; i < 8; i++) assert.notEqual(lender.take().buffer, buf.buffer);
});

test('parallel gzip compresses at GZIP_LEVEL (3) unless given a level', async () => {
  assert.equal(GZIP_LEVEL, 3);
  const at = (level?: number) => through(data, [parallelCompressStream('gzip', { workers: 2, blockSize: BLOCK, level })]);
  const [byDefault, three, six] = [await at(), await at(3), await at(6)];
  assert.ok(byDefault.equals(three), 'the default is level 3');
  assert.ok(!byDefault.equals(six), 'a given level is used');
});

test('parallel gzip is ONE gzip member (what Python tarfile r|gz requires), even with a slow consumer', async () => {
  const compressed = await through(data, [parallelCompressStream('gzip', { workers: 4, blockSize: 100_000 })], true);
  const script = [
    'import sys, zlib, hashlib',
    'raw = sys.stdin.buffer.read()',
    'd = zlib.decompressobj(wbits=31)',
    'out = d.decompress(raw)',
    'print(d.eof, len(d.unused_data), hashlib.sha256(out).hexdigest())',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: compressed, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr.toString());
  const expected = createHash('sha256').update(data).digest('hex');
  assert.equal(r.stdout.toString().trim(), `True 0 ${expected}`);
});

async function makeTar(files: Record<string, Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, size: body.length }, body);
  pack.finalize();
  const out: Buffer[] = [];
  for await (const c of pack) out.push(c as Buffer);
  return Buffer.concat(out);
}

for (const [codec, mode] of [
  ['gzip', 'r|gz'],
  ['bzip2', 'r|bz2'],
] as const) {
  test(`a tar compressed by parallel ${codec} streams through Python tarfile.open(mode='${mode}')`, async () => {
    const files: Record<string, Buffer> = {
      './PG_VERSION': Buffer.from('17\n'),
      'base/1/1259': randomBytes(700_000),
      'base/1/2619': sampleData(10_000, 900_000),
      'global/pg_control': randomBytes(8192),
    };
    const tarball = await makeTar(files);
    const compressed = await through(tarball, [parallelCompressStream(codec, { workers: 2, blockSize: 64 * 1024 })]);
    const script = [
      'import sys, tarfile, hashlib',
      `t = tarfile.open(fileobj=sys.stdin.buffer, mode='${mode}')`,
      'for m in t:',
      '    print(m.name, hashlib.sha256(t.extractfile(m).read()).hexdigest())',
    ].join('\n');
    const r = spawnSync('/usr/bin/python3', ['-c', script], { input: compressed, maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr.toString());
    const expected = Object.entries(files).map(([n, b]) => `${n} ${createHash('sha256').update(b).digest('hex')}`);
    assert.deepEqual(r.stdout.toString().trim().split('\n'), expected);
  });
}

test('parallel options are validated', () => {
  assert.throws(() => parallelCompressStream('gzip', { workers: 0 }), RangeError);
  assert.throws(() => parallelCompressStream('snappy', { blockSize: -1 }), RangeError);
  assert.throws(() => parallelCompressStream('xz', { level: 11 }), RangeError);
});
