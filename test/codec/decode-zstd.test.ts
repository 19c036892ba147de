/**
 * zstd decoding with reused contexts (src/codec/decode-zstd.ts): one stream after another decodes
 * with the same context, so a restore of many tars keeps one window per stream it decodes at once
 * instead of leaving one freed window per tar in the process; a context is kept only when its
 * frame's window is small, and a context whose stream failed or stopped inside a frame decodes the
 * next stream correctly. The context is observed through idleZstdContexts (zstd-napi gives no other
 * view of it); the resident-set effect is measured by bench/restore.ts (docs/recovery.md). A chunk
 * that decodes to far more than memory (zeros) is decoded as the reader takes it, not all at once.
 */
import { test } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import assert from 'node:assert/strict';
import { compressBuffer, CorruptDataError } from '../../src/codec/index.js';
import { compressStream, decompressStream } from '../../src/codec/streams.js';
import { declaredWindow, idleZstdContexts, ZSTD_OUT_SIZE } from '../../src/codec/decode-zstd.js';
import { withinDeadline } from '../harness/deadline.js';
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

test('a small chunk that decodes to 256 MiB of zeros is decoded as the reader takes it: never more than a few buffers ahead', async () => {
  const MiB = 1024 * 1024;
  const zeros = Buffer.alloc(MiB);
  const parts: Buffer[] = [];
  for await (const part of Readable.from((function* () {
    for (let i = 0; i < 256; i++) yield zeros;
  })()).pipe(compressStream('zstd'))) parts.push(part as Buffer);
  const stored = Buffer.concat(parts);
  assert.ok(stored.length < 64 * 1024, `256 MiB of zeros stored in ${stored.length} bytes: one chunk`);
  const decoder = decompressStream('zstd');
  let decoded = 0;
  let mostAhead = 0;
  await pipeline(
    Readable.from([stored]),
    decoder,
    new Writable({
      write(chunk: Buffer, _enc, callback) {
        decoded += chunk.length;
        if (chunk.some((b) => b !== 0)) return callback(new Error('a decoded byte is not zero'));
        mostAhead = Math.max(mostAhead, decoder.readableLength);
        setImmediate(callback);
      },
    }),
  );
  assert.equal(decoded, 256 * MiB);
  // Before: the whole 256 MiB sat in the decoder's buffer, pushed in one call.
  assert.ok(mostAhead <= 4 * ZSTD_OUT_SIZE, `the decoder held ${mostAhead} bytes ahead of its reader`);
});

test('a reader that pauses and resumes, as the decode worker does on its credit, gets every byte', async () => {
  const stored = await compressBuffer('zstd', data);
  const decoder = decompressStream('zstd');
  const out: Buffer[] = [];
  let credit = 2;
  decoder.on('data', (chunk: Buffer) => {
    out.push(Buffer.from(chunk));
    if (--credit <= 0) decoder.pause();
  });
  const refill = setInterval(() => {
    credit += 2;
    decoder.resume();
  }, 2);
  const ended = new Promise<void>((resolve, reject) => {
    decoder.once('end', resolve);
    decoder.once('error', reject);
  });
  try {
    await withinDeadline(
      (async () => {
        for (let at = 0; at < stored.length; at += 16 * 1024) {
          if (!decoder.write(stored.subarray(at, at + 16 * 1024))) await new Promise((resolve) => decoder.once('drain', resolve));
        }
        decoder.end();
        await ended;
      })(),
      20_000,
      () => `stalled after ${out.reduce((n, c) => n + c.length, 0)} of ${data.length} bytes`,
    );
  } finally {
    clearInterval(refill);
  }
  assert.ok(Buffer.concat(out).equals(data));
});
