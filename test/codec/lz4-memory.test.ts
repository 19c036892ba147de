/**
 * A backup's lz4 frames do not wait in lz4-napi's allocator for a full collection: each is a
 * Buffer of lz4-napi's own mimalloc, freed only when V8 collects it, and the backup's compressors
 * make them on the calling thread with a young-generation collection every LZ4_SCAVENGE_EVERY bytes
 * of frames, which frees the frames already written (codec/parallel.ts lz4BlockCodec). Left to V8
 * and made on libuv's pool, a 10 GB backup peaked at 160-168 MiB.
 *
 * Measured as `external - arrayBuffers` of process.memoryUsage(), as snappy-memory.test.ts does:
 * memory V8 reports outside Node's ArrayBuffer allocator, where lz4-napi's Buffers are counted.
 * The sink keeps nothing, so every frame is dead once written; a collection V8 runs on its own
 * could only lower the figure. One input for all the tests: freeing another test's input during a
 * measurement moves arrayBuffers before external and would read as memory outside the allocator.
 */
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { framedCompressStream, LZ4_SCAVENGE_EVERY, parallelCompressStream } from '../../src/codec/parallel.js';
import { irregularChunks, sampleData } from './helpers.js';

const outsideNodeAllocator = (): number => {
  const m = process.memoryUsage();
  return m.external - m.arrayBuffers;
};

const encoders = {
  parallel: () => parallelCompressStream('lz4', { workers: 2 }),
  framed: () => framedCompressStream('lz4', { workers: 2 }),
};

// As in a backup (util/gc.ts startBufferCollector): a collection frees dead Buffers itself, so
// arrayBuffers and external drop together, not one now and the other when a background sweep ends.
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

// This text compresses to about a tenth: 64 MiB makes some 6 MiB of frames.
const input = sampleData(0, 64 * 1024 * 1024);

for (const [name, encoder] of Object.entries(encoders)) {
  test(`lz4 ${name}: frames already written are freed, not left in lz4-napi's allocator`, async () => {
    const before = outsideNodeAllocator();
    let compressed = 0;
    let mostHeld = 0;
    const sink = new Writable({
      write(frame: Buffer, _enc, callback) {
        compressed += frame.length;
        mostHeld = Math.max(mostHeld, outsideNodeAllocator() - before);
        callback();
      },
    });
    await pipeline(Readable.from(irregularChunks(input)), encoder(), sink);
    assert.ok(compressed > 4 * LZ4_SCAVENGE_EVERY && compressed < input.length / 2, `compressed to ${compressed} bytes`);
    // The frames since the last collection, the ones it found alive (in flight, queued), and a few more.
    assert.ok(mostHeld < 2 * LZ4_SCAVENGE_EVERY, `${mostHeld} bytes outside Node's allocator at most, for ${compressed} compressed bytes`);
  });
}
