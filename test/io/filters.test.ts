import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { count, counted } from '../../src/io/count.js';
import { Crc32c, cryptoHasher, digestOf, hash } from '../../src/io/hash.js';
import { RateMeter } from '../../src/io/rate.js';
import { ProgressDisplay } from '../../src/io/progress.js';

const discard = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

/** Splits text into uneven chunks, so a filter that keeps state per chunk would show it. */
const chunks = (text: string) => {
  const b = Buffer.from(text);
  return [b.subarray(0, 1), b.subarray(1, 4), b.subarray(4)];
};

test('count passes bytes through and totals them', async () => {
  const seen: number[] = [];
  const c = count((n) => seen.push(n));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks('0123456789')), c, new Writable({ write: (chunk, _e, cb) => (out.push(chunk), cb()) }));
  assert.equal(c.bytes, 10);
  assert.deepEqual(seen, [1, 3, 6]);
  assert.equal(Buffer.concat(out).toString(), '0123456789');
});

test('counted: an error of the body fails the counter its reader holds', async () => {
  const body = new Readable({ read() {} });
  const c = counted(body);
  const reading = (async () => {
    for await (const _ of c);
  })();
  body.push(Buffer.from('abc'));
  body.destroy(new Error('connection reset'));
  await assert.rejects(reading, /connection reset/);
});

test('hash filters match the published vectors (MD5, SHA-256: RFC 1321 / FIPS 180 "abc"; CRC-32C "123456789")', async () => {
  const md5 = hash(cryptoHasher('md5', 'base64'));
  const sha = hash(cryptoHasher('sha256'));
  await pipeline(Readable.from(chunks('abc')), md5, sha, discard());
  assert.equal(Buffer.from(md5.digest, 'base64').toString('hex'), '900150983cd24fb0d6963f7d28e17f72');
  assert.equal(sha.digest, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');

  const crc = hash(new Crc32c());
  await pipeline(Readable.from(chunks('123456789')), crc, discard());
  assert.equal(crc.digest, 0xe3069283);
  assert.equal(digestOf('sha256', Buffer.from('abc')), sha.digest);
});

test('a hash filter has no digest before its end, and its check fails the stream before the end reaches the sink', async () => {
  const h = hash(cryptoHasher('sha256'), { check: (d) => (d === 'expected' ? undefined : new Error(`digest ${d.slice(0, 8)} does not match`)) });
  assert.throws(() => h.digest, /before the stream ended/);
  let finished = false;
  const sink = new Writable({ write: (_c, _e, cb) => cb(), final: (cb) => ((finished = true), cb()) });
  await assert.rejects(pipeline(Readable.from(chunks('abc')), h, sink), /digest ba7816bf does not match/);
  assert.equal(finished, false, 'the sink saw the end of a stream whose digest was wrong');
});

test('rate is measured over the recent window, not the whole run', () => {
  let now = 0;
  const meter = new RateMeter(() => now);
  meter.add(1000);
  now = 1000;
  meter.add(1000);
  assert.equal(meter.perSecond(), 2000);
  now = 60_000;
  assert.equal(meter.perSecond(), 0, 'a stall shows as no rate, not as the old average');
  meter.add(500);
  assert.equal(meter.perSecond(), 2000, 'a first burst counts over at least one slot');
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

test('progress on a terminal draws a bar with bytes, rate and ETA, and leaves the last one on its line', async () => {
  const out = new Capture();
  const display = new ProgressDisplay({ label: 'restoring', total: 4096, tty: true, out });
  await pipeline(Readable.from([Buffer.alloc(1024), Buffer.alloc(3072)]), display.filter(), discard());
  display.stop();
  const last = out.text.trimEnd().split('\r').pop()!;
  assert.match(last, /restoring \[#{30}\] 100% 4\.0 KiB \/ 4\.0 KiB [\d.]+ [KMG]?i?B\/s ETA /);
  assert.ok(out.text.endsWith('\n'));
});

test('progress with an estimated total stays below 100% and grows the total with the work', () => {
  const out = new Capture();
  const display = new ProgressDisplay({ label: 'b1 copying', total: 1000, estimate: true, tty: true, out });
  display.add(1500);
  display.stop();
  assert.match(out.text, /b1 copying \[#+\]  99% 1\.5 KiB \/ ~1\.5 KiB/);
});

test('progress off a terminal logs the caller\'s line on every label change, and nothing without a log', () => {
  const lines: string[] = [];
  const display = new ProgressDisplay({ label: 'waiting', total: 10, tty: false, log: (s) => lines.push(`${s.label} ${s.done}/${s.total}`) });
  display.add(4);
  display.setLabel('copying');
  display.stop();
  assert.deepEqual(lines, ['copying 4/10', 'copying 4/10']);

  const out = new Capture();
  const silent = new ProgressDisplay({ label: 'restoring', total: 10, tty: false, out });
  silent.add(10);
  silent.setLabel('done');
  silent.stop();
  assert.equal(out.text, '');
});
