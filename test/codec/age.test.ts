/**
 * The age filter against the real `age` 1.1 binary (Debian's /usr/bin/age): pgark's output must
 * decrypt with `age -d`, and `age -r` output with pgark, at every STREAM chunk boundary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream, encryptStream, AgeDecryptError, checkAgeKeys, type AgeKeys } from '../../src/codec/age.js';
import { decompressBuffer, encodeStream, parallelCompressStream, type CodecName } from '../../src/codec/index.js';
import { CompressionPool } from '../../src/codec/pool.js';
import { scratchDir } from '../harness/tmp.js';
import { CHUNK, acceptedWhileStalled, sampleData, through } from './helpers.js';

const dir = scratchDir('age');
test.after(() => dir.cleanup());

function keygen(name: string): { identity: string; recipient: string } {
  const file = join(dir.path, name);
  execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
  const identity = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  return { identity, recipient: execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim() };
}
const A = keygen('a.key');
const B = keygen('b.key');

async function run(t: Transform, input: Buffer, piece = 7777): Promise<Buffer> {
  const out: Buffer[] = [];
  const parts = function* () {
    for (let i = 0; i < input.length; i += piece) yield input.subarray(i, i + piece);
  };
  await pipeline(Readable.from(parts()), t, async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

const SIZES = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 2 * 64 * 1024, 3 * 1024 * 1024 + 5];

for (const size of SIZES) {
  test(`${size} bytes: pgark -> age -d and age -r -> pgark`, async () => {
    const plain = randomBytes(size);
    const enc = await run(encryptStream({ recipients: [A.recipient], identities: [] }), plain);
    const file = join(dir.path, `p${size}.age`);
    writeFileSync(file, enc);
    assert.ok(execFileSync('age', ['-d', '-i', join(dir.path, 'a.key'), file], { maxBuffer: 64 << 20 }).equals(plain));

    const plainFile = join(dir.path, `p${size}`);
    writeFileSync(plainFile, plain);
    const theirs = execFileSync('age', ['-r', A.recipient, plainFile], { maxBuffer: 64 << 20 });
    assert.ok((await run(decryptStream({ recipients: [], identities: [A.identity] }), theirs, 1000)).equals(plain));
  });
}

/** What `age -d` makes of `enc` with identity file `key`. */
function ageDecrypt(enc: Buffer, key = 'a.key'): Buffer {
  const file = join(dir.path, 'check.age');
  writeFileSync(file, enc);
  return execFileSync('age', ['-d', '-i', join(dir.path, key), file], { maxBuffer: 64 << 20 });
}

// Writes of exactly one chunk, of a quarter (so the staged chunk fills up exactly before the next
// write), of many chunks, and of irregular sizes: each way into and out of the staging buffer.
for (const piece of [64 * 1024, 16 * 1024, 1 << 20, 100_003]) {
  test(`writes of ${piece} bytes: age -d gives back every byte`, async () => {
    const plain = randomBytes(5 * 64 * 1024 + 77);
    assert.ok(ageDecrypt(await run(encryptStream({ recipients: [A.recipient], identities: [] }), plain, piece)).equals(plain));
    const exact = plain.subarray(0, 4 * 64 * 1024);
    assert.ok(ageDecrypt(await run(encryptStream({ recipients: [A.recipient], identities: [] }), exact, piece)).equals(exact));
  });
}

for (const codec of ['lz4', 'gzip', 'zstd'] as CodecName[]) {
  test(`${codec}: a backup's compressor sealed as it emits decrypts with age -d and decompresses to the input, also with a slow reader`, async () => {
    const plain = sampleData(3 << 20, 5 << 20);
    for (const slow of [false, true]) {
      const stored = await through(plain, [encodeStream(parallelCompressStream(codec, { workers: 2, blockSize: 256 * 1024 }), { recipients: [A.recipient], identities: [] })], slow);
      assert.ok((await decompressBuffer(codec, ageDecrypt(stored))).equals(plain), `slow reader ${slow}`);
    }
  });
}

test('an encrypting compressor whose output nobody reads stops taking input (bounded memory)', async () => {
  const workers = 2;
  const blockSize = 256 * 1024;
  const { accepted } = await acceptedWhileStalled(encodeStream(parallelCompressStream('lz4', { workers, blockSize }), { recipients: [A.recipient], identities: [] }), () => randomBytes(CHUNK));
  // The compressor's own bound (test/codec/backpressure), plus one sealed block pushed before the pause.
  const bound = (workers * 2 + 3) * blockSize;
  assert.ok(accepted > 0 && accepted <= bound, `accepted ${accepted} bytes, bound ${bound}`);
});

test('compression pool: a segment compressed and encrypted on the worker thread decrypts with age -d (and its MD5 is of the stored bytes)', async () => {
  const pool = new CompressionPool(2);
  try {
    const path = join(dir.path, 'segment');
    const plain = sampleData(4 << 20, 12 << 20);
    writeFileSync(path, plain);
    for (const codec of ['lz4', 'none'] as CodecName[]) {
      const out = await pool.encodeFile({ codec, path, md5: true, age: { recipients: [A.recipient, B.recipient], identities: [] }, spillTo: join(dir.path, `spill-${codec}`) });
      const stored = readFileSync(out.bodyPath);
      assert.equal(out.size, plain.length);
      assert.equal(out.bodyLength, stored.length);
      assert.equal(out.md5, createHash('md5').update(stored).digest('base64'));
      for (const key of ['a.key', 'b.key']) assert.ok((await decompressBuffer(codec, ageDecrypt(stored, key))).equals(plain), `${codec} ${key}`);
    }
  } finally {
    await pool.close();
  }
});

test('several recipients: each identity alone decrypts, with pgark and with age', async () => {
  const plain = randomBytes(100_000);
  const enc = await run(encryptStream({ recipients: [A.recipient, B.recipient], identities: [] }), plain);
  const file = join(dir.path, 'ab.age');
  writeFileSync(file, enc);
  for (const k of ['a.key', 'b.key']) assert.ok(execFileSync('age', ['-d', '-i', join(dir.path, k), file]).equals(plain));
  assert.ok((await run(decryptStream({ recipients: [], identities: [B.identity] }), enc)).equals(plain));
  // Rotation: a reader lists old and new identities, the one that matches is used.
  const onlyB = await run(encryptStream({ recipients: [B.recipient], identities: [] }), plain);
  assert.ok((await run(decryptStream({ recipients: [], identities: [A.identity, B.identity] }), onlyB)).equals(plain));
});

test('a wrong identity names the recipients the object needs and the ones given', async () => {
  const enc = await run(encryptStream({ recipients: [A.recipient], identities: [] }), Buffer.from('secret'));
  await assert.rejects(run(decryptStream({ recipients: [], identities: [B.identity] }, 'wals/x.age'), enc), (err: Error) => {
    assert.ok(err instanceof AgeDecryptError);
    assert.match(err.message, new RegExp(`^wals/x.age is encrypted for ${A.recipient}; your identities: ${B.recipient}$`));
    assert.doesNotMatch(err.message, /AGE-SECRET-KEY/);
    return true;
  });
});

test('truncation and a flipped byte fail; plaintext input is refused', async () => {
  const keys: AgeKeys = { recipients: [A.recipient], identities: [A.identity] };
  const plain = randomBytes(3 * 64 * 1024);
  const enc = await run(encryptStream(keys), plain);
  const chunk = 64 * 1024 + 16;
  const headerEnd = enc.length - 3 * chunk;
  for (const cut of [enc.length - 1, enc.length - chunk, headerEnd + chunk, headerEnd, 40]) {
    await assert.rejects(run(decryptStream(keys), enc.subarray(0, cut)), AgeDecryptError, `cut at ${cut}`);
  }
  for (const at of [10, headerEnd + 5, enc.length - 3]) {
    const bad = Buffer.from(enc);
    bad[at] ^= 0x01;
    await assert.rejects(run(decryptStream(keys), bad), AgeDecryptError, `flip at ${at}`);
  }
  await assert.rejects(run(decryptStream(keys), Buffer.from('plain WAL bytes')), /is not age-encrypted/);
});

test('passphrase (scrypt) objects round-trip; a wrong passphrase is refused', async () => {
  const plain = randomBytes(200_000);
  const enc = await run(encryptStream({ recipients: [], identities: [], passphrase: 'correct horse', scryptWorkFactor: 12 }), plain);
  assert.match(enc.subarray(0, 80).toString('latin1'), /\n-> scrypt \S+ 12\n/);
  assert.ok((await run(decryptStream({ recipients: [], identities: [], passphrase: 'correct horse' }), enc)).equals(plain));
  await assert.rejects(run(decryptStream({ recipients: [], identities: [A.identity], passphrase: 'wrong' }), enc), /encrypted for a passphrase \(scrypt\)/);
});

test('key syntax errors name the key by position, never its value', async () => {
  await assert.rejects(checkAgeKeys({ recipients: [A.recipient, 'age1nope'], identities: [] }), /recipient #2 is not an age1/);
  await assert.rejects(checkAgeKeys({ recipients: [], identities: ['AGE-SECRET-KEY-1XYZ'] }), (err: Error) => /identity #1/.test(err.message) && !err.message.includes('XYZ'));
  await checkAgeKeys({ recipients: [A.recipient], identities: [A.identity, B.identity] });
});
