/**
 * encoderConsumesInputAtCallback (src/codec/types.ts): a codec it names must be done with each input
 * chunk once the encoder called back for it, because the WAL pushes (codec/encode-file.ts FileBody)
 * then read the next bytes into the same memory. Each such encoder here is fed from one reused
 * buffer that is scribbled over as soon as a write calls back; its output must still decode to the
 * input. 'none' (a PassThrough, which hands on the chunk itself) is the control: the same feeding
 * corrupts it, so the check does catch an encoder that keeps a view.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Transform } from 'node:stream';
import { compressStream, decompressStream } from '../../src/codec/streams.js';
import { CODECS, encoderConsumesInputAtCallback, type CodecName } from '../../src/codec/types.js';
import { irregularChunks, sampleData, through } from './helpers.js';

const data = sampleData(512 * 1024, 2 * 1024 * 1024);
const REUSED = 1024 * 1024;

/** Feeds `data` through the encoder from one buffer, scribbled over after each write's callback. */
async function encodeFromReusedBuffer(encoder: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  encoder.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    encoder.once('end', resolve);
    encoder.once('error', reject);
  });
  const buf = Buffer.allocUnsafe(REUSED);
  for (const piece of irregularChunks(data)) {
    for (let at = 0; at < piece.length; at += REUSED) {
      const n = piece.copy(buf, 0, at, Math.min(piece.length, at + REUSED));
      await new Promise<void>((resolve, reject) => encoder.write(buf.subarray(0, n), (err) => (err ? reject(err) : resolve())));
      buf.fill(0xa5);
    }
  }
  encoder.end();
  await ended;
  return Buffer.concat(out);
}

test('the codecs whose encoders copy or consume their input at the callback are gzip, zstd, snappy and lz4', () => {
  assert.deepEqual(
    CODECS.filter((c) => encoderConsumesInputAtCallback(c)),
    ['gzip', 'snappy', 'lz4', 'zstd'],
  );
});

for (const codec of CODECS.filter((c): c is CodecName => encoderConsumesInputAtCallback(c))) {
  test(`${codec}: an input buffer overwritten right after each write callback still encodes the bytes written`, async () => {
    const stored = await encodeFromReusedBuffer(compressStream(codec));
    const decoded = await through(stored, [decompressStream(codec)]);
    assert.equal(decoded.length, data.length);
    assert.ok(decoded.equals(data), `${codec}: decoded bytes differ from the input`);
  });
}

test('control: a pass-through keeps views of its input, and the same feeding corrupts what it emits', async () => {
  const stored = await encodeFromReusedBuffer(compressStream('none'));
  assert.equal(stored.length, data.length);
  assert.ok(!stored.equals(data), 'the reused buffer was scribbled over, yet the views still held the input');
});
