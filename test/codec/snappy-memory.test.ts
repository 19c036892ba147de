/**
 * Snappy encoding leaves no output in the binding's own allocator: every encoder (a backup's
 * parallel compressor, the streaming one of WAL files) gets snappy's output copied into V8
 * Buffers, so nothing it made waits for V8's collector in mimalloc. Left there, a 1160 MB backup
 * peaked at 245 MB resident (docs/measurements/backup-memory.md).
 *
 * Measured as `external - arrayBuffers` of process.memoryUsage(): memory V8 reports outside
 * Node's ArrayBuffer allocator, which is where the binding's Buffers are counted. A collection
 * during the encode could only hide binding Buffers, never add any, as long as dead Buffers are
 * freed by the collection itself and no earlier test's input dies during a measurement (both as in
 * lz4-memory.test.ts): otherwise arrayBuffers drops on a background sweep before external does,
 * and the gap reads as memory outside the allocator (a suite run on a busy machine saw 2587233
 * bytes "grown" after 970036 compressed bytes).
 */
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import assert from 'node:assert/strict';
import { parallelCompressStream } from '../../src/codec/parallel.js';
import { SnappyFrameEncoder, snappyFrameChunksSync } from '../../src/codec/snappy-framing.js';
import { sampleData, through } from './helpers.js';

const outsideNodeAllocator = (): number => {
  const m = process.memoryUsage();
  return m.external - m.arrayBuffers;
};

/** Compressed bytes the binding may still hold after the encode: less than one 64 KiB chunk. */
const SLACK = 64 * 1024;

const encoders = {
  chunks: async (input: Buffer) => [snappyFrameChunksSync(input)],
  parallel: async (input: Buffer) => [await through(input, [parallelCompressStream('snappy', { workers: 2 })])],
  streaming: async (input: Buffer) => [await through(input, [new SnappyFrameEncoder()])],
};

setFlagsFromString('--no-concurrent-array-buffer-sweeping');

// This text compresses to about a ninth: 8 MiB makes some 950 KiB of snappy output.
const input = sampleData(0, 8 * 1024 * 1024);

for (const [name, encode] of Object.entries(encoders)) {
  test(`snappy ${name}: the compressed output is not left in the binding's allocator`, async () => {
    // The binding loads on first use (util/lazy-require.ts): its own setup is not output left behind.
    snappyFrameChunksSync(Buffer.alloc(1));
    const before = outsideNodeAllocator();
    const out = await encode(input);
    const grown = outsideNodeAllocator() - before;
    const compressed = out.reduce((n, b) => n + b.length, 0);
    assert.ok(compressed > 8 * SLACK && compressed < input.length / 2, `compressed to ${compressed} bytes`);
    assert.ok(grown < SLACK, `${grown} bytes outside Node's allocator after ${compressed} compressed bytes`);
  });
}
