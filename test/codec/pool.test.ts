/** CompressionPool: files read, compressed and hashed on worker threads, bodies handed back by transfer. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decompressBuffer, type CodecName } from '../../src/codec/index.js';
import { CompressionPool } from '../../src/codec/pool.js';
import { scratchDir } from '../harness/tmp.js';
import { sampleData } from './helpers.js';

const work = scratchDir('codec-pool');
const pool = new CompressionPool(2);
after(async () => {
  await pool.close();
  work.cleanup();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');

test('every codec: the body decodes to the file, its MD5 is right, and more jobs than workers all finish', async () => {
  // Files of different sizes, so a worker's reused input buffer must grow and shrink correctly.
  const files = [3 << 20, 1 << 20, 5 << 20, 100].map((size, i) => {
    const path = join(work.path, `f${i}`);
    writeFileSync(path, sampleData(size >> 1, size - (size >> 1)));
    return path;
  });
  const codecs: CodecName[] = ['none', 'gzip', 'zstd', 'lz4', 'snappy', 'bzip2'];
  const jobs = codecs.flatMap((codec) => files.map(async (path) => ({ codec, path, out: await pool.compressFile(codec, path, { md5: true }) })));
  for (const { codec, path, out } of await Promise.all(jobs)) {
    const original = readFileSync(path);
    assert.equal(out.size, original.length, `${codec} ${path} size`);
    assert.ok((await decompressBuffer(codec, out.body)).equals(original), `${codec} ${path} round trip`);
    assert.equal(out.md5, md5(out.body), `${codec} ${path} md5`);
  }
});

test('md5 only when asked; a missing file fails its job and the pool keeps working', async () => {
  const path = join(work.path, 'plain');
  writeFileSync(path, sampleData(1 << 19, 1 << 19));
  assert.equal((await pool.compressFile('zstd', path, { md5: false })).md5, undefined);
  await assert.rejects(pool.compressFile('zstd', join(work.path, 'missing'), { md5: true }), /ENOENT|no such file/);
  const again = await pool.compressFile('gzip', path, { md5: true });
  assert.equal(again.size, 1 << 20);
});

test("a recycled 'none' body is read into again, and holds exactly the next file's bytes", async () => {
  const big = join(work.path, 'big');
  const small = join(work.path, 'small');
  writeFileSync(big, sampleData(2 << 20, 2 << 20));
  writeFileSync(small, sampleData(1 << 20, 1 << 20));
  const first = await pool.compressFile('none', big, { md5: true });
  const memory = first.body.buffer;
  const capacity = memory.byteLength;
  pool.recycle(first.body);
  const second = await pool.compressFile('none', small, { md5: true });
  assert.equal(memory.byteLength, 0, 'the recycled buffer went to the worker (detached here)');
  assert.equal(second.body.buffer.byteLength, capacity, 'the 2 MiB file was read into the recycled 4 MiB buffer');
  assert.ok(second.body.equals(readFileSync(small)));
  assert.equal(second.size, 2 << 20);
  assert.equal(second.md5, md5(readFileSync(small)));
});
