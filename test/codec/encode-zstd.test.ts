/**
 * zstd encoding with reused compression contexts (src/codec/encode-zstd.ts): one stream after another
 * encodes with the same context, so the WAL daemon's compression worker keeps one context's memory
 * instead of leaving one freed context per segment in its heap; the frames stay byte for byte what a
 * fresh context (zstd-napi's CompressStream) writes, and the zstd program decodes them; a context
 * whose stream was abandoned or failed inside a frame starts the next stream with a new frame; a
 * context at a level with large tables is not kept. The contexts are observed through
 * idleZstdCompressors (zstd-napi gives no other view of them); the resident-set effect is measured
 * by bench/wal-archive.ts (docs/wal-archiving.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { CompressStream } from 'zstd-napi';
import { compressStream } from '../../src/codec/streams.js';
import { idleZstdCompressors } from '../../src/codec/encode-zstd.js';
import { irregularChunks, runTool, sampleData, through } from './helpers.js';
import { assertContextShared } from './zstd-contexts.js';

const data = sampleData(1024 * 1024, 3 * 1024 * 1024);

/** What a fresh zstd-napi context writes for data at level (the bytes stored before contexts were reused). */
async function freshFrame(level?: number): Promise<Buffer> {
  return through(data, [new CompressStream({ checksumFlag: true, ...(level === undefined ? {} : { compressionLevel: level }) })]);
}

test('streams encoded one after another share one context: one is idle after each, none while one encodes', async () => {
  await assertContextShared(idleZstdCompressors, () => compressStream('zstd'), async (encoder) => void (await through(data, [encoder])), 4);
});

test('a reused context writes the same bytes as a fresh one, at the default level and at level 1, and zstd -d decodes them', async () => {
  for (const level of [undefined, 1]) {
    const expected = await freshFrame(level);
    for (let i = 0; i < 3; i++) {
      const stored = await through(data, [compressStream('zstd', { level })]);
      assert.ok(stored.equals(expected), `level ${level ?? 'default'}, stream ${i}: ${stored.length} bytes against ${expected.length}`);
    }
    assert.ok(runTool('zstd', ['-d', '-c'], expected).equals(data));
  }
});

test('a context whose stream was abandoned or failed inside a frame starts the next stream with a new frame', async () => {
  const expected = await freshFrame();
  await through(data, [compressStream('zstd')]);
  const idle = idleZstdCompressors();

  // Abandoned after half the input: zstd is inside the frame, its window and tables part-filled.
  const abandoned = compressStream('zstd');
  abandoned.on('data', () => undefined);
  const half = data.subarray(0, data.length >> 1);
  await new Promise<void>((resolve, reject) => abandoned.write(half, (err) => (err ? reject(err) : resolve())));
  abandoned.destroy();
  assert.equal(idleZstdCompressors(), idle, 'its context went back (reset) to the pool');
  assert.ok((await through(data, [compressStream('zstd')])).equals(expected), 'the next stream after an abandoned one');

  // Failed: the stage after it fails mid-stream, the pipeline destroys the encoder.
  let written = 0;
  const failing = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      cb(written > 64 * 1024 ? new Error('disk full') : null);
    },
  });
  await assert.rejects(pipeline(Readable.from(irregularChunks(data)), compressStream('zstd'), failing), /disk full/);
  assert.equal(idleZstdCompressors(), idle);
  for (let i = 0; i < 2; i++) assert.ok((await through(data, [compressStream('zstd')])).equals(expected), `stream ${i} after the failure`);
});

test('a context at a level with large tables (19) is not kept, and its frame decodes', async () => {
  const idle = idleZstdCompressors();
  const stored = await through(data, [compressStream('zstd', { level: 19 })]);
  assert.equal(idleZstdCompressors(), idle, 'no level-19 context idle');
  assert.ok(runTool('zstd', ['-d', '-c'], stored).equals(data));
});
