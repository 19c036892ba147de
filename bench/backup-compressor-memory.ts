/**
 * A backup's compressor alone, with the backup's memory settings: MiB of 1 MiB read buffers
 * (lent and handed back, as backup/local-source.ts does) through parallelCompressStream (2
 * workers, 1 MiB blocks) into two 5 MiB part buffers it refills (as storage/s3-multipart.ts does),
 * with the young-generation cap and the 160 MiB plan's collector. No store, no PostgreSQL: what the
 * codec itself leaves resident, in seconds instead of a 10 GB backup's minutes.
 *
 *   MALLOC_MMAP_THRESHOLD_=262144 MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_EAGER_COMMIT=0 \
 *     node dist/bench/backup-compressor-memory.js [MiB, default 2048] [codec, default lz4]
 *
 * (the launcher's malloc settings, bin/pgark). The input alternates 8 MiB of hex text and 8 MiB of
 * mostly blank rows, about 2:1 for lz4. Prints the peak resident set (VmHWM), the CPU seconds, and
 * the resident set and `external` of the last five seconds.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { capYoungGeneration } from '../src/util/gc.js';
import { parallelCompressStream, type CodecName } from '../src/codec/index.js';
import { BufferLender, copied } from '../src/io/lent.js';
import { backupMemory } from '../src/config/memory.js';

const MiB = 1024 * 1024;
const TOTAL_MIB = Number(process.argv[2] ?? 2048);
const CODEC = (process.argv[3] ?? 'lz4') as CodecName;

capYoungGeneration();
const collector = backupMemory().startCollector();

const hexText = Buffer.alloc(8 * MiB);
for (let i = 0; i < hexText.length; i++) hexText[i] = '0123456789abcdef'.charCodeAt(Math.floor(Math.random() * 16));
const blankRows = Buffer.alloc(8 * MiB, 0x20);
for (let i = 0; i < blankRows.length; i += 97) blankRows.write(String(i), i);

const reads = new BufferLender(MiB, 4);
async function* files(): AsyncGenerator<Buffer> {
  for (let i = 0; i < TOTAL_MIB; i++) {
    const buf = reads.take();
    const from = Math.floor(i / 8) % 2 ? hexText : blankRows;
    from.copy(buf, 0, (i % 8) * MiB, (i % 8 + 1) * MiB);
    yield reads.lend(buf, MiB);
  }
}

const parts = [Buffer.allocUnsafe(5 * MiB), Buffer.allocUnsafe(5 * MiB)];
let part = 0;
let filled = 0;
let compressed = 0;
const upload = new Writable({
  write(chunk: Buffer, _enc, callback) {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(parts[part], filled, at);
      at += n;
      filled += n;
      if (filled === parts[part].length) [part, filled] = [part ^ 1, 0];
    }
    copied(chunk);
    compressed += chunk.length;
    // A turn of the event loop per chunk, as an upload's socket takes.
    setImmediate(callback);
  },
});

const lastSeconds: { rss: number; external: number }[] = [];
const sampler = setInterval(() => lastSeconds.push(process.memoryUsage()), 1000);
await pipeline(Readable.from(files()), parallelCompressStream(CODEC, { workers: 2, blockSize: MiB }), upload);
clearInterval(sampler);
collector.stop();
const cpu = process.cpuUsage();
const peakMiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const tail = lastSeconds.slice(-5).map((m) => `${(m.rss / MiB).toFixed(0)}/${(m.external / MiB).toFixed(0)}`);
console.log(
  `${CODEC} ${TOTAL_MIB} MiB -> ${(compressed / MiB).toFixed(0)} MiB: peak RSS ${peakMiB.toFixed(0)} MiB, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, load ${loadavg()[0].toFixed(1)}; last 5 s rss/external MiB: ${tail.join(' ')}`,
);
