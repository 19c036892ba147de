/**
 * Decoding on a worker thread (src/codec/decode-thread.ts): the bytes equal what the reference
 * tools and pgark's encoders wrote, a damaged frame fails the stream as CorruptDataError (so a
 * restore names the object), many streams share the worker, an unread output stops the
 * worker rather than piling decoded bytes up in either thread, and the worker holds the process
 * open exactly while it decodes.
 */
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressBuffer, CorruptDataError, decodeStreams } from '../../src/codec/index.js';
import { decompressOffThread } from '../../src/codec/decode-thread.js';
import { acceptedWhileStalled, once, runTool, sampleData, through } from './helpers.js';

const data = sampleData(3 * 1024 * 1024, 5 * 1024 * 1024);

for (const codec of ['zstd', 'snappy'] as const) {
  test(`${codec} off the main thread: pgark's encoding decodes to the same bytes, with a fast and a slow reader`, async () => {
    const stored = await compressBuffer(codec, data);
    assert.ok(stored.length < data.length);
    assert.ok((await through(stored, [decompressOffThread(codec)])).equals(data));
    assert.ok((await through(stored, [decompressOffThread(codec)], true)).equals(data));
    // decodeStreams' offThread option is what a restore's download uses.
    assert.ok((await through(stored, decodeStreams({ codec, encrypted: false }, undefined, 'x', { offThread: true }))).equals(data));
  });

  test(`${codec} off the main thread: a damaged frame fails the stream as CorruptDataError`, async () => {
    const stored = await compressBuffer(codec, data);
    const damaged = Buffer.from(stored);
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    await assert.rejects(through(damaged, [decompressOffThread(codec)]), (err: unknown) => err instanceof CorruptDataError && err.message.startsWith(`${codec} data cannot be decoded: `));
    // Truncated: the end of the stream comes inside a frame.
    await assert.rejects(through(stored.subarray(0, stored.length - 100), [decompressOffThread(codec)]), CorruptDataError);
  });
}

test('zstd off the main thread reads what the zstd CLI wrote', async () => {
  const stored = runTool('zstd', ['-c', '-19', '--long=27'], data);
  assert.ok((await through(stored, [decompressOffThread('zstd')])).equals(data));
});

test('eight streams at once share the worker and each gets its own bytes', async () => {
  const inputs = await Promise.all(Array.from({ length: 8 }, (_, i) => compressBuffer(i % 2 ? 'zstd' : 'snappy', data.subarray(i * 100_000))));
  const outputs = await Promise.all(inputs.map((s) => through(s, [decompressOffThread(s[0] === 0xff ? 'snappy' : 'zstd')], true)));
  outputs.forEach((o, i) => assert.ok(o.equals(data.subarray(i * 100_000)), `stream ${i}`));
});

test('a zstd bomb whose output is not read stops the worker: a few decoded chunks wait, not the 256 MiB', async () => {
  const bomb = await compressBuffer('zstd', Buffer.alloc(256 * 1024 * 1024));
  const stalled = await acceptedWhileStalled(decompressOffThread('zstd'), once(bomb));
  assert.equal(stalled.accepted, bomb.length);
  // CREDIT chunks ahead of the reader, each at most zstd's 128 KiB output block.
  assert.ok(stalled.buffered <= 8 * 128 * 1024 + 16 * 1024, `decoded bytes waiting: ${stalled.buffered}`);
});

test('the worker keeps the process alive while it decodes, and not once idle (pgark restore exited only when the idle worker ended)', async () => {
  const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
  const stored = await compressBuffer('zstd', data);
  const before = ports();
  const decoder = decompressOffThread('zstd');
  try {
    // Decoding: the worker's reply may be all the event loop waits for, so its port must count.
    assert.equal(ports(), before + 1);
    assert.ok((await through(stored, [decoder])).equals(data));
  } finally {
    decoder.destroy();
  }
  assert.equal(ports(), before, 'the idle worker still holds the event loop open');
});

test('a thread started ahead of its stream (while a restore runs its pre-checks) decodes the first stream and does not hold the process open', async () => {
  const stored = await compressBuffer('zstd', data);
  const codec = new URL('../../src/codec/index.js', import.meta.url).href;
  // A process of its own: the threads of this file's other tests would otherwise take the stream.
  // (A CommonJS script: the worker would inherit --input-type and refuse to load.)
  const script = `(async () => {
    const { startDecodeThread, decodeStreams } = await import(${JSON.stringify(codec)});
    startDecodeThread('zstd');
    const chunks = [];
    const [decoder] = decodeStreams({ codec: 'zstd', encrypted: false }, undefined, 'x', { offThread: true });
    decoder.on('data', (c) => chunks.push(c));
    process.stdin.pipe(decoder);
    await new Promise((resolve, reject) => decoder.on('end', resolve).on('error', reject));
    process.stdout.write(String(Buffer.concat(chunks).length));
  })();`;
  // It ends by itself once decoded: the idle thread left nothing holding its event loop.
  const out = execFileSync(process.execPath, ['-e', script], { input: stored, encoding: 'utf8' });
  assert.equal(Number(out), data.length);
});
