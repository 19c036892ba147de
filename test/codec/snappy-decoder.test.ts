/**
 * The framed-snappy decoder's input and output (src/codec/snappy-framing.ts): it is done with
 * each input chunk at its write callback, so the decode worker hands the chunk's buffer back for
 * the next read (a chunk cut by the input's end is copied, not kept as a view of the input);
 * skippable chunks of any length pass without being buffered; and decoded bytes come in pieces of
 * up to SNAPPY_OUT_SIZE. What these buffers do to a restore's resident set is measured by
 * bench/restore.ts (docs/recovery.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressBuffer, CorruptDataError } from '../../src/codec/index.js';
import { SNAPPY_OUT_SIZE, SNAPPY_STREAM_IDENTIFIER, SnappyFrameDecoder } from '../../src/codec/snappy-framing.js';
import { irregularChunks, sampleData } from './helpers.js';

const data = sampleData(1024 * 1024, 2 * 1024 * 1024);

/** Writes each chunk as a copy and overwrites the copy once the decoder called back for it; returns the decoded pieces. */
async function decodeReusingInput(chunks: Iterable<Buffer>): Promise<Buffer[]> {
  const decoder = new SnappyFrameDecoder();
  const pieces: Buffer[] = [];
  decoder.on('data', (b: Buffer) => pieces.push(Buffer.from(b)));
  const done = new Promise((resolve, reject) => decoder.on('end', resolve).on('error', reject));
  const writeAll = async () => {
    for (const chunk of chunks) {
      const reused = Buffer.from(chunk);
      await new Promise<void>((resolve, reject) =>
        decoder.write(reused, (err) => {
          if (err) reject(err);
          // What a reused read buffer looks like when the next read lands in it.
          reused.fill(0xa5);
          resolve();
        }),
      );
    }
    decoder.end();
  };
  await Promise.all([writeAll(), done]);
  return pieces;
}

/** A chunk of type 0x80-0xfe (0xfe is padding), which a decoder must pass over. */
function skippable(type: number, length: number): Buffer {
  const h = Buffer.alloc(4 + length, 0x5a);
  h[0] = type;
  h.writeUIntLE(length, 1, 3);
  return h;
}

test('snappy: the decoder is done with each input chunk at its write callback, wherever the writes cut the frame chunks', async () => {
  const stored = await compressBuffer('snappy', data);
  // irregularChunks cuts inside headers (1, 3 and 7 bytes), bodies, and at chunk boundaries.
  assert.ok(Buffer.concat(await decodeReusingInput(irregularChunks(stored))).equals(data));
  const oneByte = (function* () {
    for (let at = 0; at < 300_000; at++) yield stored.subarray(at, at + 1);
    yield stored.subarray(300_000);
  })();
  assert.ok(Buffer.concat(await decodeReusingInput(oneByte)).equals(data));
});

test('snappy: decoded bytes come in pieces of up to SNAPPY_OUT_SIZE, two frame chunks each', async () => {
  const stored = await compressBuffer('snappy', data);
  const pieces = await decodeReusingInput([stored]);
  assert.ok(Buffer.concat(pieces).equals(data));
  assert.equal(SNAPPY_OUT_SIZE, 128 * 1024);
  assert.ok(pieces.every((p) => p.length > 0 && p.length <= SNAPPY_OUT_SIZE));
  assert.equal(pieces.length, Math.ceil(data.length / SNAPPY_OUT_SIZE));
});

test('snappy: skippable chunks of any length are passed over across writes; bad chunk headers fail at once', async () => {
  const stored = await compressBuffer('snappy', data);
  const body = stored.subarray(SNAPPY_STREAM_IDENTIFIER.length);
  // 4 MiB of padding: more than any data chunk, so it cannot have gone through the decoder's buffer.
  const padded = Buffer.concat([SNAPPY_STREAM_IDENTIFIER, skippable(0xfe, 4 * 1024 * 1024), skippable(0x80, 0), body.subarray(0, 0), body]);
  assert.ok(Buffer.concat(await decodeReusingInput(irregularChunks(padded))).equals(data));

  const fails = (input: Buffer, message: RegExp) =>
    assert.rejects(decodeReusingInput(irregularChunks(input)), (err: unknown) => err instanceof CorruptDataError && message.test(err.message));
  await fails(Buffer.concat([SNAPPY_STREAM_IDENTIFIER, skippable(0x02, 10), body]), /reserved unskippable chunk type 0x2/);
  await fails(Buffer.concat([skippable(0xff, 7), body]), /bad stream identifier/);
  await fails(Buffer.concat([Buffer.from([0xff, 6, 0, 0]), Buffer.from('sNaPpX'), body]), /bad stream identifier/);
  await fails(Buffer.concat([SNAPPY_STREAM_IDENTIFIER, Buffer.from([0x00, 0xff, 0xff, 0x01])]), /exceeds the 64 KiB limit/);
  await fails(body, /does not start with the sNaPpY identifier/);
  // Ends inside a skippable chunk, and inside a data chunk's header.
  await fails(Buffer.concat([SNAPPY_STREAM_IDENTIFIER, skippable(0xfe, 1000).subarray(0, 500)]), /stream ends inside a chunk/);
  await fails(Buffer.concat([stored, Buffer.from([0x00, 0x10])]), /stream ends inside a chunk/);
});
