/**
 * Throughput of single-stream vs parallel compression on 200 MB of roughly 2:1 compressible data.
 * Run: npx tsc -p tsconfig.json && node dist/bench/codec.js [MB] [workers]
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressStream, parallelCompressStream, type CodecName } from '../src/codec/index.js';

const totalMB = Number(process.argv[2] ?? 200);
const workers = Number(process.argv[3] ?? os.availableParallelism());
const CHUNK = 1 << 20;

/** 8 MiB pattern: alternating 2 KiB of random bytes and 2 KiB of repeated text, about 2:1 for gzip. */
function pattern(): Buffer {
  const parts: Buffer[] = [];
  const text = Buffer.from('INSERT INTO t VALUES (42, now(), \'some row text\');\n'.repeat(40)).subarray(0, 2048);
  for (let i = 0; i < 2048; i++) parts.push(randomBytes(2048), text);
  return Buffer.concat(parts);
}

const source = pattern();

function* input(): Generator<Buffer> {
  const chunks = (totalMB * (1 << 20)) / CHUNK;
  for (let i = 0; i < chunks; i++) {
    const off = (i * CHUNK) % source.length;
    yield source.subarray(off, off + CHUNK);
  }
}

async function measure(make: () => Transform): Promise<{ mbps: number; ratio: number }> {
  let outBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      outBytes += chunk.length;
      cb();
    },
  });
  const start = process.hrtime.bigint();
  await pipeline(Readable.from(input()), make(), sink);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { mbps: totalMB / seconds, ratio: (totalMB * (1 << 20)) / outBytes };
}

const codecs: CodecName[] = ['gzip', 'zstd', 'lz4', 'snappy'];
console.log(`${totalMB} MB input, parallel workers=${workers}, blockSize=1 MiB, ${os.availableParallelism()} CPUs`);
for (const codec of codecs) {
  const single = await measure(() => compressStream(codec));
  const parallel = await measure(() => parallelCompressStream(codec, { workers, blockSize: 1 << 20 }));
  console.log(
    `${codec.padEnd(7)} single ${single.mbps.toFixed(1).padStart(7)} MB/s (ratio ${single.ratio.toFixed(2)})` +
      `   parallel ${parallel.mbps.toFixed(1).padStart(7)} MB/s (ratio ${parallel.ratio.toFixed(2)})`,
  );
}
