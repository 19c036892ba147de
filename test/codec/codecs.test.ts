import { test } from 'node:test';
import assert from 'node:assert/strict';
import snappy from 'snappy';
import {
  CODECS,
  CorruptDataError,
  codecExtension,
  compressBuffer,
  compressStream,
  decompressBuffer,
  decompressStream,
  splitCodecSuffix,
  type CodecName,
} from '../../src/codec/index.js';
import { SNAPPY_STREAM_IDENTIFIER } from '../../src/codec/snappy-framing.js';
import { runTool, sampleData, through } from './helpers.js';

/** A few MB: 1 MiB random + 2 MiB text (more than one lz4 frame, many snappy chunks). */
const data = sampleData(1 << 20, 3 << 20);

/** Codecs with a Debian command-line reference tool: [command, compress args, decompress args]. */
const cliReference: Partial<Record<CodecName, [string, string[], string[]]>> = {
  gzip: ['gzip', ['-c'], ['-d', '-c']],
  bzip2: ['bzip2', ['-c'], ['-d', '-c']],
  xz: ['xz', ['-c'], ['-d', '-c']],
  zstd: ['zstd', ['-c', '-q'], ['-d', '-c', '-q']],
  lz4: ['lz4', ['-c', '-q'], ['-d', '-c', '-q']],
};

// python-snappy (barman's own snappy dependency) is not installed on this machine, so the
// independent reference for the framing format is the `snappy` package's framed codec (Rust snap crate).
async function referenceSnappyCompress(input: Buffer): Promise<Buffer> {
  const c = new snappy.Compressor();
  const parts = [c.update(input)];
  parts.push(await c.finish());
  return Buffer.concat(parts);
}

async function referenceSnappyDecompress(input: Buffer): Promise<Buffer> {
  const d = new snappy.Decompressor();
  const parts = [d.update(input)];
  parts.push(await d.finish());
  return Buffer.concat(parts);
}

function referenceCompress(codec: CodecName, input: Buffer): Promise<Buffer> | Buffer {
  if (codec === 'snappy') return referenceSnappyCompress(input);
  const [cmd, args] = cliReference[codec]!;
  return runTool(cmd, args, input);
}

function referenceDecompress(codec: CodecName, input: Buffer): Promise<Buffer> | Buffer {
  if (codec === 'snappy') return referenceSnappyDecompress(input);
  const [cmd, , args] = cliReference[codec]!;
  return runTool(cmd, args, input);
}

const realCodecs = CODECS.filter((c) => c !== 'none');

for (const codec of realCodecs) {
  test(`${codec}: streams round-trip random + text data`, async () => {
    const compressed = await through(data, [compressStream(codec)]);
    assert.ok(compressed.length < data.length, `${codec} should shrink text-heavy data (${compressed.length} >= ${data.length})`);
    const restored = await through(compressed, [decompressStream(codec)]);
    assert.ok(restored.equals(data), `${codec} round trip changed the data`);
  });

  test(`${codec}: our output is decoded by the reference implementation`, async () => {
    const compressed = await compressBuffer(codec, data);
    const decoded = await referenceDecompress(codec, compressed);
    assert.ok(decoded.equals(data));
  });

  test(`${codec}: the reference implementation's output is decoded by us`, async () => {
    const compressed = await referenceCompress(codec, data);
    const decoded = await through(compressed, [decompressStream(codec)], true);
    assert.ok(decoded.equals(data));
  });

  test(`${codec}: empty input gives a valid stream that decodes to nothing`, async () => {
    const compressed = await compressBuffer(codec, Buffer.alloc(0));
    assert.ok(compressed.length > 0);
    assert.equal((await referenceDecompress(codec, compressed)).length, 0);
    assert.equal((await decompressBuffer(codec, compressed)).length, 0);
  });

  test(`${codec}: a flipped byte is an error, not wrong data`, async () => {
    const compressed = await compressBuffer(codec, data);
    for (const at of [Math.floor(compressed.length / 3), Math.floor(compressed.length / 2), compressed.length - 20]) {
      const bad = Buffer.from(compressed);
      bad[at]! ^= 0x5a;
      await assert.rejects(decompressBuffer(codec, bad), CorruptDataError, `flip at ${at} of ${compressed.length} not detected`);
    }
  });

  test(`${codec}: a truncated stream is an error`, async () => {
    const compressed = await compressBuffer(codec, data);
    for (const length of [compressed.length - 1, Math.floor(compressed.length / 2), 3]) {
      await assert.rejects(decompressBuffer(codec, compressed.subarray(0, length)), CorruptDataError, `truncation to ${length} not detected`);
    }
  });

  test(`${codec}: data in another format is rejected`, async () => {
    await assert.rejects(decompressBuffer(codec, Buffer.from('this is plain text, not compressed at all\n'.repeat(50))), CorruptDataError);
  });
}

test('compression levels are honoured and validated', async () => {
  const text = data.subarray(1 << 20);
  const fast = await compressBuffer('gzip', text, { level: 1 });
  const best = await compressBuffer('gzip', text, { level: 9 });
  assert.ok(best.length < fast.length, `gzip -9 (${best.length}) should beat -1 (${fast.length})`);
  const xzFast = await compressBuffer('xz', text, { level: 0 });
  assert.ok((await decompressBuffer('xz', xzFast)).equals(text));
  assert.throws(() => compressStream('bzip2', { level: 12 }), RangeError);
});

test('snappy output starts with the stream identifier and uses <= 64 KiB chunks', async () => {
  const compressed = await compressBuffer('snappy', data);
  assert.ok(compressed.subarray(0, 10).equals(SNAPPY_STREAM_IDENTIFIER));
  let off = 10;
  let chunks = 0;
  while (off < compressed.length) {
    const type = compressed[off]!;
    const len = compressed.readUIntLE(off + 1, 3);
    assert.ok(type === 0 || type === 1, `unexpected chunk type ${type}`);
    if (type === 1) assert.ok(len - 4 <= 65536);
    off += 4 + len;
    chunks++;
  }
  assert.equal(off, compressed.length);
  assert.equal(chunks, Math.ceil(data.length / 65536));
});

test('none passes bytes through unchanged', async () => {
  assert.ok((await compressBuffer('none', data)).equals(data));
  assert.ok((await decompressBuffer('none', data)).equals(data));
});

test('splitCodecSuffix and codecExtension agree for every codec', () => {
  for (const codec of CODECS) {
    for (const encrypted of [false, true]) {
      const name = `000000010000000000000001${codecExtension(codec, encrypted)}`;
      assert.deepEqual(splitCodecSuffix(name), { base: '000000010000000000000001', codec, encrypted });
    }
  }
  assert.deepEqual(splitCodecSuffix('data.tar.gz'), { base: 'data.tar', codec: 'gzip', encrypted: false });
  assert.deepEqual(splitCodecSuffix('data.tar.zst.age'), { base: 'data.tar', codec: 'zstd', encrypted: true });
  assert.deepEqual(splitCodecSuffix('data_0001.tar.bz2'), { base: 'data_0001.tar', codec: 'bzip2', encrypted: false });
  assert.deepEqual(splitCodecSuffix('00000002.history'), { base: '00000002.history', codec: 'none', encrypted: false });
  assert.deepEqual(splitCodecSuffix('00000002.history.age'), { base: '00000002.history', codec: 'none', encrypted: true });
  assert.deepEqual(splitCodecSuffix('.gz'), { base: '.gz', codec: 'none', encrypted: false });
  assert.deepEqual(splitCodecSuffix('.age'), { base: '.age', codec: 'none', encrypted: false });
  assert.deepEqual(splitCodecSuffix('x.gzip'), { base: 'x.gzip', codec: 'none', encrypted: false });
});
