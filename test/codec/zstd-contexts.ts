/**
 * The check both zstd directions share (test/codec/encode-zstd.test.ts, decode-zstd.test.ts): streams
 * run one after another take the one idle context and give it back, none is created.
 */
import assert from 'node:assert/strict';
import type { Transform } from 'node:stream';

/** Runs `streams` streams from open(), each through run(), asserting the idle count idle() around each. */
export async function assertContextShared(idle: () => number, open: () => Transform, run: (stream: Transform) => Promise<void>, streams: number): Promise<void> {
  await run(open());
  const before = idle();
  assert.ok(before >= 1, 'the finished stream handed its context back');
  for (let i = 0; i < streams; i++) {
    const stream = open();
    assert.equal(idle(), before - 1, `stream ${i} took the idle context instead of creating one`);
    await run(stream);
    assert.equal(idle(), before, `stream ${i} gave it back`);
  }
}
