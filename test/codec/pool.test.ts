/** CompressionPool: files read, compressed, hashed and spilled on worker threads in bounded chunks; only lengths and digests come back. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decompressBuffer, type CodecName } from '../../src/codec/index.js';
import { CHUNK } from '../../src/codec/encode-file.js';
import { CompressionPool } from '../../src/codec/pool.js';
import { scratchDir } from '../harness/tmp.js';
import { CompressStream } from 'zstd-napi';
import { sampleData, through } from './helpers.js';

const work = scratchDir('codec-pool');
const pool = new CompressionPool(2);
after(async () => {
  await pool.close();
  work.cleanup();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');
let spills = 0;
const spillPath = () => join(work.path, `spill-${spills++}.body`);

test('every codec: the body decodes to the file, its length and MD5 are right, no chunk exceeds CHUNK, and more jobs than workers all finish', async () => {
  // A 16 MiB file, as a WAL segment: it must pass in chunks, never whole.
  const files = [16 << 20, 1 << 20, 5 << 20, 100].map((size, i) => {
    const path = join(work.path, `f${i}`);
    writeFileSync(path, sampleData(size >> 1, size - (size >> 1)));
    return path;
  });
  const codecs: CodecName[] = ['none', 'gzip', 'zstd', 'lz4', 'snappy', 'bzip2'];
  const jobs = codecs.flatMap((codec) => files.map(async (path) => ({ codec, path, out: await pool.encodeFile({ codec, path, md5: true, spillTo: spillPath() }) })));
  for (const { codec, path, out } of await Promise.all(jobs)) {
    const original = readFileSync(path);
    const body = readFileSync(out.bodyPath);
    assert.equal(out.size, original.length, `${codec} ${path} size`);
    assert.equal(out.bodyLength, body.length, `${codec} ${path} body length`);
    assert.ok((await decompressBuffer(codec, body)).equals(original), `${codec} ${path} round trip`);
    assert.equal(out.md5, md5(body), `${codec} ${path} md5`);
    // The file's read chunks (CHUNK) count too; lz4's 64 KiB frames are smaller than those.
    assert.ok(out.largestChunk > 0 && out.largestChunk <= CHUNK, `${codec} ${path}: largest chunk ${out.largestChunk} bytes`);
    if (codec === 'none') assert.equal(out.bodyPath, path, 'an uncompressed file is uploaded from where it is');
    else assert.equal(statSync(out.bodyPath).mode & 0o777, 0o600, 'a spill file is private');
  }
});

test('a zstd body is one frame at level 1, byte for byte what a fresh level-1 context writes (WAL_ZSTD_LEVEL: level 3 cost WAL pushes three times the CPU)', async () => {
  const path = join(work.path, 'wal-level');
  // Hex text, like the WAL bench's md5 rows: the two levels write different frames for it.
  writeFileSync(path, Buffer.from(Array.from({ length: 1 << 15 }, (_, i) => createHash('md5').update(String(i)).digest('hex')).join('')));
  const out = await pool.encodeFile({ codec: 'zstd', path, md5: true, spillTo: spillPath() });
  const levelOne = await through(readFileSync(path), [new CompressStream({ checksumFlag: true, compressionLevel: 1 })]);
  const levelThree = await through(readFileSync(path), [new CompressStream({ checksumFlag: true, compressionLevel: 3 })]);
  assert.ok(!levelOne.equals(levelThree), 'the sample tells the levels apart');
  const body = readFileSync(out.bodyPath);
  assert.ok(body.equals(levelOne), `${body.length} bytes against level 1's ${levelOne.length} (level 3: ${levelThree.length})`);
});

test('md5 only when asked (a plain file then is not read at all); a missing file fails its job and the pool keeps working', async () => {
  const path = join(work.path, 'plain');
  writeFileSync(path, sampleData(1 << 19, 1 << 19));
  assert.equal((await pool.encodeFile({ codec: 'zstd', path, md5: false, spillTo: spillPath() })).md5, undefined);
  const plain = await pool.encodeFile({ codec: 'none', path, md5: false, spillTo: spillPath() });
  assert.deepEqual([plain.bodyPath, plain.bodyLength, plain.largestChunk, plain.md5], [path, 1 << 20, 0, undefined]);
  const missingSpill = spillPath();
  await assert.rejects(pool.encodeFile({ codec: 'zstd', path: join(work.path, 'missing'), md5: true, spillTo: missingSpill }), /ENOENT|no such file/);
  const again = await pool.encodeFile({ codec: 'gzip', path, md5: true, spillTo: spillPath() });
  assert.equal(again.size, 1 << 20);
});

test('a spill file is created exclusively: an existing name fails the job instead of being overwritten', async () => {
  const path = join(work.path, 'excl');
  writeFileSync(path, sampleData(1 << 16, 1 << 16));
  const taken = spillPath();
  writeFileSync(taken, 'someone else');
  await assert.rejects(pool.encodeFile({ codec: 'gzip', path, md5: true, spillTo: taken }), /EEXIST/);
  assert.equal(readFileSync(taken, 'utf8'), 'someone else');
  assert.ok(existsSync(path));
});

test('workers start on the first job and stop after idleMs without one; the next job starts one again', async () => {
  const idle = new CompressionPool(1, 100);
  try {
    assert.equal(idle.workers, 0, 'no worker before a job needs one');
    const path = join(work.path, 'idle-stop');
    writeFileSync(path, sampleData(1 << 16, 1 << 16));
    const first = await idle.encodeFile({ codec: 'zstd', path, md5: true, spillTo: spillPath() });
    assert.equal(idle.workers, 1);
    // Waits for the stop itself, not for a time: the assertion is that it happens at all.
    while (idle.workers > 0) await new Promise((r) => setTimeout(r, 20));
    const second = await idle.encodeFile({ codec: 'zstd', path, md5: true, spillTo: spillPath() });
    assert.equal(idle.workers, 1, 'a job after the stop gets a new worker');
    assert.equal(second.md5, first.md5);
  } finally {
    await idle.close();
  }
});
