/**
 * zstd decoding with reused contexts (src/codec/decode-zstd.ts): one stream after another decodes
 * with the same context, so a restore of many tars keeps one window per stream it decodes at once
 * instead of leaving one freed window per tar in the process; a context is kept only when its
 * frame's window is small, and a context whose stream failed or stopped inside a frame decodes the
 * next stream correctly. The context is observed through idleZstdContexts (zstd-napi gives no other
 * view of it); the resident-set effect is measured by bench/restore.ts (docs/recovery.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressBuffer, CorruptDataError } from '../../src/codec/index.js';
import { decompressStream } from '../../src/codec/streams.js';
import { declaredWindow, idleZstdContexts, ZSTD_OUT_SIZE } from '../../src/codec/decode-zstd.js';
import { runTool, sampleData, through } from './helpers.js';
import { assertContextShared } from './zstd-contexts.js';

const data = sampleData(1024 * 1024, 3 * 1024 * 1024);

test('streams decoded one after another share one context: one is idle after each, none while one decodes', async () => {
  const stored = await compressBuffer('zstd', data);
  assert.equal(declaredWindow(stored), 2 * 1024 * 1024);
  await assertContextShared(idleZstdContexts, () => decompressStream('zstd'), async (decoder) => assert.ok((await through(stored, [decoder])).equals(data)), 5);
});

test('a context whose stream was truncated, damaged or abandoned mid-frame decodes the next stream to the same bytes', async () => {
  const stored = await compressBuffer('zstd', data);
  const damaged = Buffer.from(stored);
  damaged[Math.floor(damaged.length / 2)] ^= 0xff;
  await assert.rejects(through(stored.subarray(0, stored.length - 100), [decompressStream('zstd')]), CorruptDataError);
  await assert.rejects(through(damaged, [decompressStream('zstd')]), CorruptDataError);
  const abandoned = decompressStream('zstd');
  abandoned.write(stored.subarray(0, stored.length >> 1));
  abandoned.destroy();
  for (let i = 0; i < 3; i++) assert.ok((await through(stored, [decompressStream('zstd')])).equals(data), `stream ${i} after the failures`);
});

test('a context that decoded a large window (zstd --long=27) or a second frame is not kept', async () => {
  const long = runTool('zstd', ['-c', '-19', '--long=27'], data);
  assert.equal(declaredWindow(long), 128 * 1024 * 1024);
  const before = idleZstdContexts();
  assert.ok((await through(long, [decompressStream('zstd')])).equals(data));
  assert.equal(idleZstdContexts(), Math.max(0, before - 1), 'the 128 MiB window went with its context');
  const twoFrames = Buffer.concat([await compressBuffer('zstd', data), await compressBuffer('zstd', data)]);
  const after = idleZstdContexts();
  assert.ok((await through(twoFrames, [decompressStream('zstd')])).equals(Buffer.concat([data, data])));
  assert.equal(idleZstdContexts(), Math.max(0, after - 1));
});

test('zstd decodes into the buffers the caller supplies: each chunk a view of one of them, and no buffer taken is left unused', async () => {
  const stored = await compressBuffer('zstd', data);
  const supplied = new Set<ArrayBufferLike>();
  const decoder = decompressStream('zstd', (size) => {
    assert.ok(size >= ZSTD_OUT_SIZE);
    const b = Buffer.from(new ArrayBuffer(size));
    supplied.add(b.buffer);
    return b;
  });
  const chunks: Buffer[] = [];
  decoder.on('data', (c: Buffer) => chunks.push(Buffer.from(c)) && assert.ok(supplied.has(c.buffer) && c.byteOffset === 0));
  // In 4 KiB writes, most of which end inside a block: zstd decodes nothing from them, and the
  // buffer it was given (a transfer buffer, in the worker) must not be dropped.
  for (let at = 0; at < stored.length; at += 4096) decoder.write(stored.subarray(at, at + 4096));
  decoder.end();
  await new Promise((resolve, reject) => decoder.on('end', resolve).on('error', reject));
  assert.ok(Buffer.concat(chunks).equals(data));
  assert.ok(supplied.size <= chunks.length + 1, `${supplied.size} buffers taken for ${chunks.length} chunks`);
});
