/**
 * lz4 frame size: every lz4 encoder (a backup's parallel and framed compressors, the streaming
 * one of WAL files) cuts its input into frames of LZ4_FRAME_INPUT (64 KiB), each a complete frame
 * that the lz4 CLI decodes on its own, and their concatenation one stream. Frames of 1-4 MiB took
 * a backup far over its memory plan (docs/measurements/backup-memory.md), and 256 KiB ones still
 * over 160 MB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { framedCompressStream, parallelCompressStream } from '../../src/codec/parallel.js';
import { Lz4FrameEncoder, LZ4_FRAME_INPUT } from '../../src/codec/lz4.js';
import { runTool, sampleData, through } from './helpers.js';

const MAGIC = Buffer.from([0x04, 0x22, 0x4d, 0x18]);

/** The stream split where each frame starts; each piece is decoded alone, so a magic inside a frame's data would fail its decode. */
function framesOf(stream: Buffer): Buffer[] {
  const starts: number[] = [];
  for (let at = stream.indexOf(MAGIC); at !== -1; at = stream.indexOf(MAGIC, at + 1)) starts.push(at);
  assert.equal(starts[0], 0, 'the stream starts with a frame');
  return starts.map((s, i) => stream.subarray(s, starts[i + 1] ?? stream.length));
}

const encoders = {
  parallel: () => parallelCompressStream('lz4', { workers: 2 }),
  framed: () => framedCompressStream('lz4', { workers: 2 }),
  streaming: () => new Lz4FrameEncoder(),
};

for (const [name, make] of Object.entries(encoders)) {
  test(`lz4 ${name}: 64 KiB frames, each decoded alone by the lz4 CLI, together the input`, async () => {
    assert.equal(LZ4_FRAME_INPUT, 64 * 1024);
    // Six full frames and a short one, random bytes (stored blocks) and text (compressed ones).
    const input = sampleData(2 * LZ4_FRAME_INPUT + 999, 4 * LZ4_FRAME_INPUT + 12345 - 999);
    const stream = await through(input, [make()]);
    assert.ok(runTool('lz4', ['-d', '-c'], stream).equals(input), 'the concatenated frames decode to the input');
    const sizes = framesOf(stream).map((frame) => runTool('lz4', ['-d', '-c'], frame).length);
    assert.deepEqual(sizes, [...Array(6).fill(LZ4_FRAME_INPUT), 12345]);
  });
}
