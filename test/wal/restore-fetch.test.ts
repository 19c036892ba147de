/**
 * fetchWalFile's transfer over a real TLS s3rver with a private CA (the bench's and many on-premises
 * stores' setup): zstd segments decode into a few buffers the file writer hands back, not into a
 * fresh 128 KiB Buffer per piece (16 MiB of garbage per segment, which the WAL daemon freed with
 * full collections); an uncompressed segment, which comes as TLS records, is written in gathered
 * writes rather than one per record; and every file still arrives byte for byte and checked.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { walKey } from '../../src/catalog/layout.js';
import { compressBuffer } from '../../src/codec/index.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { DamagedWalError, fetchWalFile, GATHERED_WRITE, walOutputBuffersMade } from '../../src/wal/restore.js';
import type { WalTarget } from '../../src/wal/target.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment } from './helpers.js';

const SERVER = 'fetch';
const seg = (n: number) => `0000000100000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const dir = scratchDir('wal-restore-fetch');
let ts: TestStore;
let store: ObjectStore;
let target: WalTarget;
const segments = new Map<string, Buffer>();

before(async () => {
  ts = await startStore('s3-tls');
  store = await openObjectStore(ts.resolved(SERVER));
  target = { store, serverName: SERVER, compression: 'zstd', maxParallel: 2, skipEmptyCheck: true, description: 'test store' };
  for (let n = 1; n <= 4; n++) {
    // Every page partly random, as WAL is: zstd's output then comes in many 128 KiB pieces.
    const fill = Buffer.alloc(16 * 1024 * 1024 - 64);
    for (let p = 0; p < fill.length; p += 8192) randomBytes(3000).copy(fill, p);
    const bytes = craftSegment(seg(n), undefined, fill);
    segments.set(seg(n), bytes);
    await store.put(walKey(SERVER, seg(n), '.zst'), await compressBuffer('zstd', bytes));
  }
});

after(async () => {
  await store?.close();
  await ts?.stop();
  dir.cleanup();
});

test('zstd segments fetched one after another decode into the same few buffers, byte for byte', async () => {
  const made = walOutputBuffersMade();
  for (const [name, bytes] of segments) {
    const dest = join(dir.path, name);
    assert.equal(await fetchWalFile(target, name, dest), bytes.length);
    assert.ok(readFileSync(dest).equals(bytes), `${name} arrived intact`);
  }
  // 64 MiB decoded in 128 KiB pieces: 512 Buffers if each piece had its own.
  const used = walOutputBuffersMade() - made;
  assert.ok(used >= 1 && used <= 16, `${used} output buffers for 4 segments`);
  assert.deepEqual(readdirSync(dir.path).filter((f) => f.includes('pgark-tmp')), [], 'no temp file left');
});

test('a zstd object that decodes to the wrong segment is refused from the header the writer kept', async () => {
  // Segment 1's bytes under segment 9's name.
  await store.put(walKey(SERVER, seg(9), '.zst'), await compressBuffer('zstd', segments.get(seg(1))!));
  await assert.rejects(fetchWalFile(target, seg(9), join(dir.path, seg(9))), (e) => e instanceof DamagedWalError && /first page is for LSN/.test(e.message));
  assert.deepEqual(readdirSync(dir.path).filter((f) => f.startsWith(`.${seg(9)}`) || f === seg(9)), [], 'nothing under the name, no temp file');
});

test('an uncompressed segment, which arrives as TLS records of at most 16 KiB, is written in gathered writes, byte for byte', async () => {
  const expected = craftSegment(seg(12), undefined, segments.get(seg(2))!.subarray(64));
  await store.put(walKey(SERVER, seg(12), ''), expected);
  // Every write a FileHandle makes while the segment is fetched (the writer has no other way to the file).
  const handle = await open(join(dir.path, 'probe'), 'w');
  const proto = Object.getPrototypeOf(handle) as { write: (...a: unknown[]) => unknown; writev: (...a: unknown[]) => unknown };
  await handle.close();
  const original = { write: proto.write, writev: proto.writev };
  let writes = 0;
  proto.write = function (this: unknown, ...a: unknown[]) {
    writes++;
    return original.write.apply(this, a);
  };
  proto.writev = function (this: unknown, ...a: unknown[]) {
    writes++;
    return original.writev.apply(this, a);
  };
  try {
    const dest = join(dir.path, seg(12));
    assert.equal(await fetchWalFile(target, seg(12), dest), expected.length);
    assert.ok(readFileSync(dest).equals(expected), 'arrived intact');
  } finally {
    Object.assign(proto, original);
  }
  // 16 MiB in records of 16 KiB or less is 1024 writes or more one at a time; gathered, 64 or 65.
  const most = Math.ceil(expected.length / GATHERED_WRITE) + 1;
  assert.ok(writes >= 1 && writes <= most, `${writes} writes for a 16 MiB segment (at most ${most})`);
});
