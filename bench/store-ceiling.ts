/**
 * The ceiling the other benchmarks run under: how fast one TLS s3rver on this machine ingests data
 * when nothing else is done (no PostgreSQL, no tar, no compression, no disk reads). Bytes come from
 * memory (random data) and go through pgark's own S3 driver in the two shapes pgark uses:
 *   - one large object as a streamed multipart upload (a base backup's data.tar), for a few part
 *     sizes and queue depths;
 *   - many 16 MiB objects, each one PUT, a few at once (WAL segments with wal.maxParallel).
 * bench/backup and bench/wal-archive compare tools with each other; this says how close to the
 * store's own limit they are. putCeiling() is the same question without pgark's driver: raw HTTP
 * PUTs of 16 MiB bodies from one keep-alive agent, the least a client can cost; bench/barman-dropin
 * runs it on its own s3rver after its drains.
 *
 * --wan puts the shaping proxy (bench/util.ts, docs/tuning.md) in front of s3rver, as the other
 * benchmarks' --wan does: the ceiling then includes the link and the proxy's own CPU on these cores.
 *
 *   node dist/bench/store-ceiling.js [--mb 1160] [--segments 100] [--http] [--wan [--rtt-ms 25] [--bandwidth-mbps 40]]
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { startS3rver, type S3rver } from '../test/harness/s3rver.js';
import { startStore } from '../test/harness/stores.js';
import { openObjectStore } from '../src/storage/open.js';
import { numberOption, wanConditions, wanOption } from './util.js';

const MiB = 1024 * 1024;
const TOTAL = numberOption('mb', 1160) * 1e6;
const SEGMENTS = numberOption('segments', 100);
const TLS = !process.argv.includes('--http');
const SHAPES = [
  { partSize: 8 * MiB, queueSize: 2 },
  { partSize: 8 * MiB, queueSize: 4 },
  { partSize: 16 * MiB, queueSize: 4 },
];

/** total bytes in 1 MiB chunks cut from one random block, so producing them costs nothing. */
function source(total: number): Readable {
  const block = randomBytes(64 * MiB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(MiB, total - sent);
      const at = sent % (block.length - MiB);
      sent += n;
      this.push(block.subarray(at, at + n));
    },
  });
}

/**
 * Objects/s that a plain-http s3rver stores: `count` PUTs of one 16 MiB random body under `prefix`,
 * `parallel` at once, unsigned (s3rver takes anonymous writes), each awaited to its 200. The objects
 * are deleted from disk afterwards.
 */
export async function putCeiling(s3: S3rver, prefix: string, parallel: number, count: number): Promise<{ seconds: number; perSecond: number }> {
  if (s3.tls) throw new Error('putCeiling: plain-http s3rver only');
  const body = randomBytes(16 * MiB);
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const put = (key: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { agent, host: '127.0.0.1', port: s3.port, method: 'PUT', path: `/${s3.bucket}/${prefix}/${key}`, headers: { 'content-length': body.length, 'content-type': 'application/octet-stream' } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${key}: HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < count) await put(String(next++).padStart(6, '0'));
      }),
    );
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  rmSync(`${s3.dataDir}/${s3.bucket}/${prefix}`, { recursive: true, force: true });
  return { seconds, perSecond: count / seconds };
}

async function main(): Promise<void> {
  const wan = wanOption();
  const s3 = await startS3rver({ tls: TLS, front: false, wan });
  console.log(wanConditions(wan));
  const store = await startStore(TLS ? 's3-tls' : 's3', { s3rver: s3, prefix: 'ceiling' });
  const objects = await openObjectStore(store.resolved());
  try {
    console.log(`one ${(TOTAL / 1e6).toFixed(0)} MB object, streamed multipart through pgark's S3 driver to ${TLS ? 'TLS ' : ''}s3rver, ${new Date().toISOString()}`);
    console.log('part size  queue  seconds   MB/s');
    for (const [i, shape] of SHAPES.entries()) {
      const t0 = performance.now();
      await objects.put(`ceiling-${i}`, source(TOTAL), { ...shape, sizeHint: TOTAL });
      const seconds = (performance.now() - t0) / 1000;
      console.log(`${String(shape.partSize / MiB).padStart(6)} MiB ${String(shape.queueSize).padStart(6)} ${seconds.toFixed(1).padStart(8)} ${(TOTAL / 1e6 / seconds).toFixed(0).padStart(6)}`);
      await objects.delete([`ceiling-${i}`]);
    }
    const segment = randomBytes(16 * MiB);
    console.log(`\n${SEGMENTS} objects of 16 MiB, one PUT each`);
    console.log('at once  seconds   MB/s  objects/s');
    for (const parallel of [1, 2, 4]) {
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next < SEGMENTS) await objects.put(`seg-${parallel}/${String(next++).padStart(6, '0')}`, segment);
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      console.log(`${String(parallel).padStart(7)} ${seconds.toFixed(1).padStart(8)} ${((SEGMENTS * segment.length) / 1e6 / seconds).toFixed(0).padStart(6)} ${(SEGMENTS / seconds).toFixed(2).padStart(10)}`);
    }
  } finally {
    await objects.close();
    await store.stop();
    await s3.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
