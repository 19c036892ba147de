/**
 * Preloaded into a sidecar by bench/backup-memory.ts (NODE_OPTIONS=--import): samples the
 * process's own memory every 10 ms and keeps the sample with the largest resident set, split
 * into V8 heap, Buffers (arrayBuffers) and the rest, so a peak can be attributed from outside.
 * Writes it to $PGARK_BENCH_SAMPLES as JSON whenever the peak grows (at most every 100 ms); a %p
 * there becomes the process id, for a tree of processes that all inherit the preload.
 * Once the Buffers pass 24 MiB, it runs one full collection and records what is left 100 ms later
 * (`live*`): what the backup really holds, against what was dead but not yet collected.
 * PGARK_BENCH_SERIES_MS=N also appends one line of JSON every N ms to the samples file's name plus
 * `.series` (the same fields, with seconds since start): what grows over a long run.
 * PGARK_BENCH_MINOR_GC_MS=N also runs a young-generation collection every N ms (a what-if: how
 * much of the peak is dead Buffers that no scavenge has reclaimed yet).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const out = process.env.PGARK_BENCH_SAMPLES?.replace('%p', String(process.pid));
if (out) {
  let peak = 0;
  let dirty = false;
  let sample: Record<string, number> = {};
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (o: object) => void;
  let live: Record<string, number> | undefined;
  const statusKiB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  setInterval(() => {
    const m = process.memoryUsage();
    if (!live && m.arrayBuffers > 24 * 1024 * 1024) {
      live = { beforeArrayBuffers: m.arrayBuffers };
      gc({ type: 'major' });
      setTimeout(() => {
        const after = process.memoryUsage();
        Object.assign(live!, { liveArrayBuffers: after.arrayBuffers, liveRss: after.rss, liveHeapUsed: after.heapUsed });
        dirty = true;
      }, 100);
    }
    if (m.rss <= peak) return;
    peak = m.rss;
    sample = { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rssAnon: statusKiB('RssAnon') * 1024, rssFile: statusKiB('RssFile') * 1024 };
    dirty = true;
  }, 10).unref();
  setInterval(() => {
    if (!dirty) return;
    dirty = false;
    writeFileSync(out, JSON.stringify({ ...sample, ...live }));
  }, 100).unref();
  const seriesEvery = Number(process.env.PGARK_BENCH_SERIES_MS ?? 0);
  if (seriesEvery > 0) {
    const t0 = performance.now();
    setInterval(() => {
      const m = process.memoryUsage();
      const line = { s: Math.round(performance.now() - t0) / 1000, rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rssAnon: statusKiB('RssAnon') * 1024, rssFile: statusKiB('RssFile') * 1024 };
      appendFileSync(`${out}.series`, `${JSON.stringify(line)}\n`);
    }, seriesEvery).unref();
  }
  const minorEvery = Number(process.env.PGARK_BENCH_MINOR_GC_MS ?? 0);
  if (minorEvery > 0) {
    setInterval(() => gc({ type: 'minor' }), minorEvery).unref();
  }
}
