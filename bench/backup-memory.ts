/**
 * Where a Backup.Backup's memory goes: one instance sidecar archives WAL (PostgreSQL's
 * archive_command), and for each variant a fresh instance sidecar, run as the operator injects
 * it (SIDECAR_ENV, PGARK_MEMORY_BUDGET=128Mi), takes one backup of the same database while
 * bench/memory-sampler.ts, preloaded into it, records the split of its largest resident set.
 *
 *   node dist/bench/backup-memory.js [--scale 50] [--text-mb 350] [--compression gzip] [--jobs 2]
 *     [--variants ';MALLOC_ARENA_MAX=2;NODE_EXTRA=--trace-gc']      (';'-separated, each "K=V K=V", '' = as injected)
 *
 * Prints per variant: the idle and peak resident set (VmHWM), and at the peak the V8 heap, the
 * Buffers (arrayBuffers) and what neither accounts for (native: zlib, glibc arenas, code).
 */
import { join } from 'node:path';
import { writeStoreManifests } from '../test/plugin/helpers.js';
import { clusterJson, pluginCluster } from '../test/harness/cnpg-client.js';
import { startS3rver } from '../test/harness/s3rver.js';
import { startStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { PLUGIN_NAME, startPluginArchivedServer, startSidecar } from '../test/plugin/sidecar-process.js';
import { SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../src/config/memory.js';
import { loadBenchData, waitArchiverIdle } from './database.js';
import { numberOption, option, procStatusKiB } from './util.js';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

const SCALE = numberOption('scale', 50);
const TEXT_MB = numberOption('text-mb', 350);
const COMPRESSION = option('compression') ?? 'gzip';
const JOBS = numberOption('jobs', 2);
const VARIANTS = (option('variants') ?? '').split(';');
const SAMPLER = new URL('./memory-sampler.js', import.meta.url).pathname;
/** The bar: the container limit the operator is to go back to. */
const BUDGET = '128Mi';
const MiB = 1024 * 1024;
const mib = (n: number) => (n / MiB).toFixed(0).padStart(4);

function variantEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of text.split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const extra = env.NODE_EXTRA ?? '';
  delete env.NODE_EXTRA;
  return { ...SIDECAR_ENV, NODE_OPTIONS: `${SIDECAR_NODE_OPTIONS} --import=${SAMPLER} ${extra}`.trim(), PGARK_MEMORY_BUDGET: BUDGET, ...env };
}

async function main(): Promise<void> {
  const work = scratchDir('bench-backup-memory');
  const s3 = await startS3rver({ tls: false, front: false });
  const store = await startStore('s3', { s3rver: s3, prefix: 'pgark' });
  const configuration = { data: { compression: COMPRESSION, jobs: JOBS } };
  const manifests = writeStoreManifests(work.path, store, 'store', { configuration });
  const cluster = pluginCluster({ name: 'bench', pluginName: PLUGIN_NAME, barmanObjectName: 'store' });
  const server = await startPluginArchivedServer({ dir: work.path, manifests: [manifests], cluster, parameters: { barmanObjectName: 'store' }, env: variantEnv('') });
  const { pg } = server;
  const stop = async () => {
    await server.sidecar.stop();
    await pg.destroy();
    await s3.stop();
    work.cleanup();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop().finally(() => process.exit(130)));
  const conn = { PGHOST: join(pg.baseDir, 'sock'), PGPORT: String(pg.port), PGUSER: 'postgres', PGDATA: pg.pgdata };
  try {
    await loadBenchData(pg, SCALE, TEXT_MB);
    const dbBytes = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
    console.log(`database ${(dbBytes / 1e6).toFixed(0)} MB (pgbench scale ${SCALE} + ${TEXT_MB} MB text), ${COMPRESSION}, jobs ${JOBS}, budget ${BUDGET}`);
    console.log('variant                         seconds  idle  peak | heapTotal heapUsed arrayBuffers other(native) RssAnon RssFile  (MiB, at the peak)  load');
    for (const [i, v] of VARIANTS.entries()) {
      await waitArchiverIdle(pg);
      const dir = join(work.path, `v${i}`);
      const samples = join(dir, 'samples.json');
      const sidecar = await startSidecar({ role: 'instance', dir, files: [manifests], env: { ...conn, ...variantEnv(v), PGARK_BENCH_SAMPLES: samples } });
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const idle = procStatusKiB(sidecar.pid, 'VmRSS') * 1024;
        const backupDefinition = Buffer.from(JSON.stringify({ metadata: { name: `mem-${i}` }, spec: { method: 'plugin', cluster: { name: 'bench' }, onlineConfiguration: { immediateCheckpoint: true } } }));
        const t0 = performance.now();
        await sidecar.client.call('cnpgi.backup.v1.Backup', 'Backup', { clusterDefinition: clusterJson(cluster), backupDefinition, parameters: {} });
        const seconds = (performance.now() - t0) / 1000;
        await new Promise((r) => setTimeout(r, 300));
        const peak = sidecar.peakRss();
        const s = existsSync(samples) ? (JSON.parse(readFileSync(samples, 'utf8')) as Record<string, number>) : {};
        const other = s.rss - s.heapTotal - s.arrayBuffers;
        console.log(
          `${(v || 'as injected').slice(0, 31).padEnd(31)} ${seconds.toFixed(1).padStart(7)} ${mib(idle)}  ${mib(peak)} | ${mib(s.heapTotal)}      ${mib(s.heapUsed)}     ${mib(s.arrayBuffers)}         ${mib(other)}    ${mib(s.rssAnon)}   ${mib(s.rssFile)}                      ${loadavg()[0].toFixed(1)}`,
        );
        if (s.liveArrayBuffers !== undefined) console.log(`    one full collection at ${mib(s.beforeArrayBuffers)} MiB of Buffers left ${mib(s.liveArrayBuffers)} MiB of them (resident set then ${mib(s.liveRss)} MiB, heap used ${mib(s.liveHeapUsed)} MiB)`);
        if (v.includes('trace')) console.log(sidecar.log().split('\n').filter((l) => /Mark-Compact|Scavenge|phase/.test(l)).slice(-40).join('\n'));
      } finally {
        await sidecar.stop();
      }
    }
  } finally {
    await stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
