/**
 * Base-backup benchmark: the same PostgreSQL 15 database backed up to one TLS s3rver by pgark,
 * barman-cloud-backup 3.4 and pgBackRest 2.45 (process-max=2), in one run, with comparable codecs.
 *
 *   npm run bench:backup                      # pgbench scale 50 + 350 MB of ~2:1 text (> 1 GB)
 *   BENCH_SCALE=5 BENCH_TEXT_MB=30 npm run bench:backup        # a quick run
 *   BENCH_TOOLS=pgark,pgbackrest BENCH_CODECS=none,lz4 ...     # a subset
 *   npm run bench:backup -- --incremental     # pgark full, ~BENCH_CHANGE_PCT % of the pages changed, then incremental
 *
 * Every tool reads the data directory on this host, writes over https to the same s3rver and
 * waits, as it does by default, for what it needs: pgark and pgBackRest for the end WAL segment
 * to be archived (archive_command runs both archivers), barman-cloud for nothing. Printed per
 * run: wall seconds, MB/s of database size, stored size and ratio, peak RSS (GNU time %M).
 *
 * --incremental measures pgark alone: a full backup, then an UPDATE of a contiguous BENCH_CHANGE_PCT
 * (default 2) % of pgbench_accounts' rows (so about that share of its pages, plus as many new pages
 * for the new row versions at its end), then an incremental backup; it prints the incremental's
 * stored bytes and wall time as fractions of the full's. The issue's bar is <= 5 % of the bytes and
 * <= 25 % of the time; a file-level incremental stores every changed file whole, and
 * pgbench_accounts is one file per GB, so it cannot meet it on this workload.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/pg/binaries.js';
import { startPostgres, type PgServer } from '../test/harness/postgres.js';
import { startS3rver } from '../test/harness/s3rver.js';
import { startStore, type TestStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { openObjectStore } from '../src/storage/open.js';
import { pgbackrestConfig } from './pgbackrest.js';
import { loadBenchData, timed, waitArchiverIdle } from './database.js';

type Tool = 'pgark' | 'barman' | 'pgbackrest';
type Codec = 'none' | 'gzip' | 'lz4' | 'zstd' | 'snappy' | 'bzip2';

const SCALE = Number(process.env.BENCH_SCALE ?? 50);
const TEXT_MB = Number(process.env.BENCH_TEXT_MB ?? 350);
const TOOLS = (process.env.BENCH_TOOLS ?? 'pgark,pgbackrest,barman').split(',') as Tool[];
const CODECS = (process.env.BENCH_CODECS ?? 'none,gzip,lz4,zstd').split(',') as Codec[];
const JOBS = Number(process.env.BENCH_JOBS ?? 2);
const INCREMENTAL = process.argv.includes('--incremental');
const CHANGE_PCT = Number(process.env.BENCH_CHANGE_PCT ?? 2);
const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');
/** Extra node flags for pgark's process, e.g. BENCH_PGARK_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env.BENCH_PGARK_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Which codec each tool uses for a column; undefined = the tool has none comparable. */
const TOOL_CODEC: Record<Tool, Partial<Record<Codec, string[]>>> = {
  pgark: { none: ['none'], gzip: ['gzip'], lz4: ['lz4'], zstd: ['zstd'], snappy: ['snappy'], bzip2: ['bzip2'] },
  pgbackrest: { none: ['none'], gzip: ['gz'], lz4: ['lz4'], zstd: ['zst'], bzip2: ['bz2'] },
  barman: { none: [], gzip: ['--gzip'], snappy: ['--snappy'], bzip2: ['--bzip2'] },
};

interface Result {
  tool: Tool;
  codec: Codec;
  seconds: number;
  storedBytes: number;
  peakRssKb: number;
  ok: boolean;
  note?: string;
}

async function prefixBytes(store: TestStore, prefix: string): Promise<number> {
  const os = await openObjectStore(store.resolved());
  try {
    let n = 0;
    for await (const e of os.list(prefix)) if (e.object) n += e.object.size;
    return n;
  } finally {
    await os.close();
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(0);
}

/** pgark full, then CHANGE_PCT % of pgbench_accounts updated, then pgark incremental; prints the fractions. */
async function incrementalRun(pg: PgServer, store: TestStore, manifest: string, dbBytes: number): Promise<void> {
  const codec = CODECS[0];
  const backup = async (type: 'full' | 'incremental', prefix: string) => {
    await waitArchiverIdle(pg);
    const before = await prefixBytes(store, prefix);
    const args = [...NODE_ARGS, PGARK, 'backup', '-f', manifest, '--type', type, '--method', 'local', '--compression', codec, '--jobs', String(JOBS), '--immediate-checkpoint', '--pgdata', pg.pgdata, '--no-progress'];
    const r = await timed(process.execPath, args, { ...pg.env, PGARK_LOG_LEVEL: 'warn' });
    if (r.code !== 0) throw new Error(`pgark backup --type ${type} failed: ${r.stderr.slice(-500)}`);
    return { seconds: r.seconds, bytes: (await prefixBytes(store, prefix)) - before, rssKb: r.rssKb };
  };
  const full = await backup('full', 'bench/base/');
  const [{ n }] = await pg.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_accounts');
  const changed = Math.round((Number(n) * CHANGE_PCT) / 100);
  await pg.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${changed}`);
  await pg.query('CHECKPOINT');
  const [{ pages }] = await pg.query<{ pages: string }>(`SELECT pg_relation_size('pgbench_accounts') / 8192 AS pages`);
  const incr = await backup('incremental', 'bench/pgark-incremental/');
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
  console.log(`changed: ${changed} of ${n} pgbench_accounts rows (${CHANGE_PCT} %, contiguous), table now ${pages} pages; codec ${codec}`);
  console.log(`full:        ${full.seconds.toFixed(1)} s, stored ${mb(full.bytes)} MB, peak RSS ${(full.rssKb / 1024).toFixed(0)} MB`);
  console.log(`incremental: ${incr.seconds.toFixed(1)} s, stored ${mb(incr.bytes)} MB, peak RSS ${(incr.rssKb / 1024).toFixed(0)} MB`);
  console.log(`incremental / full: bytes ${pct(incr.bytes, full.bytes)} (bar <= 5 %), time ${pct(incr.seconds, full.seconds)} (bar <= 25 %); database ${mb(dbBytes)} MB`);
}

async function main(): Promise<void> {
  const work = scratchDir('bench-backup');
  const s3 = await startS3rver({ tls: true, front: false });
  const pgarkStore = await startStore('s3-tls', { s3rver: s3, prefix: 'pgark' });
  const barmanStore = await startStore('s3-tls', { s3rver: s3, prefix: 'barman' });
  const pg = await startPostgres({ major: 15, noStart: true, settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  const results: Result[] = [];
  const cleanup = async () => {
    await pg.destroy();
    await pgarkStore.stop();
    await barmanStore.stop();
    await s3.stop();
    work.cleanup();
  };
  // An interrupted run must not leave PostgreSQL and s3rver behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    const manifest = join(work.path, 'cluster.yaml');
    writeFileSync(manifest, pgarkStore.manifest({ clusterName: 'bench' }));
    chmodSync(manifest, 0o644);
    const pbrConf = pgbackrestConfig(work.path, s3, pg, '/pgbackrest', JOBS);
    pg.configure({
      archive_mode: 'on',
      archive_command: `${process.execPath} ${PGARK} wal-archive --no-daemon -f ${manifest} %p && pgbackrest --config=${pbrConf} --stanza=bench archive-push %p`,
    });
    await pg.start();
    const who = pg.who;
    const t0 = Date.now();
    await loadBenchData(pg, SCALE, TEXT_MB);
    const dbBytes = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
    console.log(`database: ${mb(dbBytes)} MB (pgbench scale ${SCALE} + ${TEXT_MB} MB of hex text), loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const pbrEnv = { PGHOST: join(pg.baseDir, 'sock') };
    const sc = await timed('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', 'stanza-create'], pbrEnv, who?.uid, who?.gid);
    if (sc.code !== 0) throw new Error(`pgbackrest stanza-create failed: ${sc.stderr}`);

    if (INCREMENTAL) {
      await incrementalRun(pg, pgarkStore, manifest, dbBytes);
      return;
    }
    for (const codec of CODECS) {
      for (const tool of TOOLS) {
        const codecArgs = TOOL_CODEC[tool][codec];
        if (!codecArgs) continue;
        await waitArchiverIdle(pg);
        let r;
        let stored = 0;
        if (tool === 'pgark') {
          r = await timed(process.execPath, [...NODE_ARGS, PGARK, 'backup', '-f', manifest, '--compression', codecArgs[0], '--jobs', String(JOBS), '--immediate-checkpoint', '--pgdata', pg.pgdata, '--no-progress'], { ...pg.env, PGARK_LOG_LEVEL: 'warn' });
          const before = results.filter((x) => x.tool === 'pgark').reduce((n, x) => n + x.storedBytes, 0);
          stored = (await prefixBytes(pgarkStore, 'bench/base/')) - before;
        } else if (tool === 'barman') {
          const b = barmanStore.barman!;
          r = await timed('barman-cloud-backup', [...b.args, ...codecArgs, '--immediate-checkpoint', '-J', String(JOBS), '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', barmanStore.destinationPath, 'bench'], b.env);
          const before = results.filter((x) => x.tool === 'barman').reduce((n, x) => n + x.storedBytes, 0);
          stored = (await prefixBytes(barmanStore, 'bench/base/')) - before;
        } else {
          r = await timed('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', `--compress-type=${codecArgs[0]}`, '--type=full', 'backup'], pbrEnv, who?.uid, who?.gid);
          const rootStore = await startStore('s3-tls', { s3rver: s3, prefix: 'pgbackrest' });
          const before = results.filter((x) => x.tool === 'pgbackrest').reduce((n, x) => n + x.storedBytes, 0);
          stored = (await prefixBytes(rootStore, 'backup/bench/')) - before;
          await rootStore.stop();
        }
        const res: Result = { tool, codec, seconds: r.seconds, storedBytes: stored, peakRssKb: r.rssKb, ok: r.code === 0, note: r.code === 0 ? undefined : r.stderr.slice(-300) };
        results.push(res);
        console.log(
          `${codec.padEnd(6)} ${tool.padEnd(10)} ${res.ok ? '' : 'FAILED '}${r.seconds.toFixed(1).padStart(7)} s ${(dbBytes / 1e6 / r.seconds).toFixed(1).padStart(7)} MB/s  stored ${mb(stored).padStart(6)} MB (ratio ${(dbBytes / Math.max(1, stored)).toFixed(2)})  peak RSS ${(r.rssKb / 1024).toFixed(0)} MB${res.note ? `\n    ${res.note}` : ''}`,
        );
      }
    }
    console.log('\nsummary (seconds; pgark speed-up = other / pgark):');
    for (const codec of CODECS) {
      const p = results.find((x) => x.tool === 'pgark' && x.codec === codec && x.ok);
      if (!p) continue;
      const vs = results
        .filter((x) => x.codec === codec && x.tool !== 'pgark' && x.ok)
        .map((x) => `${x.tool} ${x.seconds.toFixed(1)} s (x${(x.seconds / p.seconds).toFixed(2)})`);
      console.log(`  ${codec.padEnd(6)} pgark ${p.seconds.toFixed(1)} s, ${(dbBytes / 1e6 / p.seconds).toFixed(1)} MB/s, peak RSS ${(p.peakRssKb / 1024).toFixed(0)} MB; ${vs.join('; ')}`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
