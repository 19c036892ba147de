/**
 * The WAL daemon loads a codec's native module only when it runs that codec: the name parsing it
 * needs for every push and listing lives in codec/types.ts, decoders load on first decode, gzip
 * loads zlib alone (codec/encode-gzip.ts), and @node-rs/crc32 (io/hash.ts) loads on the first
 * CRC-32C. Each native module costs the process several MiB resident (docs/wal-archiving.md), and the
 * daemon's bar is 96 MiB at maxParallel 8. Observed from outside: the shared objects mapped in the
 * real daemon (/proc/<pid>/maps) after `pgark wal-archive` stored a segment in the real s3rver,
 * each stored object decoded back to its segment (lz4 by the lz4 program).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { walKey } from '../../src/catalog/layout.js';
import { decompressBuffer } from '../../src/codec/index.js';
import { CODEC_EXTENSION } from '../../src/codec/types.js';
import { collect } from '../../src/io/collect.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from './helpers.js';

const SEG = '000000010000000000000001';
const work = scratchDir('wal-native-modules');
let store: TestStore;
let client: ObjectStore;
const pgdatas: string[] = [];

before(async () => {
  store = await startStore('s3');
  client = await openObjectStore(store.resolved('unused'));
});
after(async () => {
  for (const d of pgdatas) await stopWalDaemon(d);
  await client.close();
  await store.stop();
  work.cleanup();
});

/** The codecs' native modules, by the file each maps. */
const NATIVE = { snappy: /snappy\.[^/]*\.node$/, lz4: /lz4-napi\.[^/]*\.node$/, zstd: /zstd-napi\/.*binding\.node$/, crc32: /crc32\.[^/]*\.node$/ };

function mappedNative(pid: number): string[] {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  return Object.entries(NATIVE)
    .filter(([, re]) => maps.some((l) => re.test(l)))
    .map(([name]) => name);
}

/** Archives one segment through the daemon with the codec; the daemon's pid, what the store holds, and the segment. */
async function archiveWith(codec: 'none' | 'gzip' | 'zstd' | 'lz4' | 'snappy'): Promise<{ pid: number; decoded: Buffer; segment: Buffer }> {
  const server = `native-${codec}`;
  const d = fakePgdata(join(work.path, server));
  pgdatas.push(d.pgdata);
  const segment = craftSegment(SEG);
  const path = d.addReady(SEG, segment);
  const manifest = join(work.path, `${server}.yaml`);
  writeFileSync(manifest, store.manifest({ clusterName: 'pg', serverName: server, objectStore: codec === 'none' ? {} : { wal: { compression: codec } } }));
  const r = await runPgark(['wal-archive', '-f', manifest, path], { cwd: d.pgdata });
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(readFileSync(walRuntime(d.pgdata).lockFile, 'utf8'));
  const stored = await collect(await client.get(walKey(server, SEG, CODEC_EXTENSION[codec])));
  return { pid, decoded: await decompressBuffer(codec, stored), segment };
}

for (const codec of ['none', 'gzip'] as const) {
  test(`a daemon that stored a segment with ${codec} (S3) has mapped none of the codecs' native modules`, async () => {
    const { pid, decoded, segment } = await archiveWith(codec);
    assert.ok(decoded.equals(segment), 'the stored object decodes to the segment');
    assert.deepEqual(mappedNative(pid), []);
  });
}

// lz4 also runs on the worker's own thread here (Lz4FrameEncoder onThread), which its decoding checks.
for (const [codec, loaded] of [['zstd', ['zstd']], ['lz4', ['lz4']], ['snappy', ['snappy', 'crc32']]] as const) {
  test(`a daemon that stored a segment with ${codec} has mapped ${loaded.join(' and ')} alone (in its compression worker)`, async () => {
    const { pid, decoded, segment } = await archiveWith(codec);
    assert.ok(decoded.equals(segment), 'the stored object decodes to the segment');
    assert.deepEqual(mappedNative(pid), loaded);
  });
}
