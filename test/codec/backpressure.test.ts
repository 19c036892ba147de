import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { compressStream, decompressStream, parallelCompressStream } from '../../src/codec/index.js';
import { CHUNK, acceptedWhileStalled, once } from './helpers.js';

const random = () => randomBytes(CHUNK);

for (const codec of ['gzip', 'snappy', 'lz4'] as const) {
  test(`parallel ${codec} stops reading input when its output is not consumed (bounded memory)`, async () => {
    const workers = 2;
    const blockSize = 512 * 1024;
    const { accepted } = await acceptedWhileStalled(parallelCompressStream(codec, { workers, blockSize }), random);
    // in-flight blocks + the block being filled + the previous block + stream buffers
    const bound = (workers * 2 + 2) * blockSize;
    assert.ok(accepted > 0 && accepted <= bound, `accepted ${accepted} bytes, bound ${bound}`);
  });
}

test('child-process codecs stop reading input when their output is not consumed', async () => {
  // bzip2 holds at most a 900 kB block plus pipe buffers; the source would go on forever otherwise
  const { accepted } = await acceptedWhileStalled(compressStream('bzip2'), random);
  assert.ok(accepted > 0 && accepted < 8 * 1024 * 1024, `bzip2 accepted ${accepted} bytes`);

  // A decoder fed a tiny stream that inflates to 128 MiB must pause the tool, not buffer its output.
  const bomb = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    const z = compressStream('xz');
    z.on('data', (c: Buffer) => parts.push(c));
    z.on('end', () => resolve(Buffer.concat(parts)));
    z.on('error', reject);
    z.end(Buffer.alloc(128 * 1024 * 1024));
  });
  const stalled = await acceptedWhileStalled(decompressStream('xz'), once(bomb));
  assert.equal(stalled.accepted, bomb.length);
  assert.ok(stalled.buffered < 4 * 1024 * 1024, `xz decoder buffered ${stalled.buffered} bytes of output`);
});
