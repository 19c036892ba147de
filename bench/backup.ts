/**
 * Base-backup benchmark: the same PostgreSQL 15 database backed up to one TLS s3rver by pgark,
 * barman-cloud-backup 3.4 and pgBackRest 2.45 (process-max=2), in one run, with comparable codecs.
 *
 *   npm run bench:backup                      # pgbench scale 50 + 350 MB of ~2:1 text (> 1 GB)
 *   BENCH_SCALE=5 BENCH_TEXT_MB=30 npm run bench:backup        # a quick run
 *   BENCH_TOOLS=pgark,pgbackrest BENCH_CODECS=none,lz4 ...     # a subset
 *   npm run bench:backup -- --incremental     # pgark full, ~BENCH_CHANGE_PCT % of the pages changed, then incremental
 *   BENCH_CHANGE_SPREAD=pages npm run bench:backup -- --incremental   # the changed rows spread one page in 50
 *   BENCH_RESTORE=1 ...                       # also restore each of this build's backups, with its own peak RSS and CPU
 *   BENCH_KEEP_DATA=/var/tmp/bench-10g BENCH_SCALE=600 BENCH_TEXT_MB=1000 ...   # keep the loaded database for the next run
 *
 * Every tool reads the data directory on this host, writes over https to the same s3rver and
 * waits, as it does by default, for what it needs: pgark and pgBackRest for the end WAL segment
 * to be archived (archive_command runs both archivers), barman-cloud for nothing. Printed per
 * run: wall seconds, MB/s of database size, stored size and ratio, peak RSS (GNU time %M KiB, printed in MiB) and CPU
 * seconds (user + system of the tool's processes).
 *
 * --incremental measures pgark alone: a full backup, then an UPDATE of a contiguous BENCH_CHANGE_PCT
 * (default 2) % of pgbench_accounts' rows (so about that share of its pages, plus as many new pages
 * for the new row versions at its end), then an incremental backup; it prints the incremental's
 * stored bytes and wall time as fractions of the full's (the issue's bar: <= 5 % of the bytes and
 * <= 25 % of the time), and, from the 8 KiB pages that changed between the two, what a block-level
 * incremental would store and its block map would weigh for block sizes from 8 KiB to 1 MiB.
 */
import { chmodSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { BLOCK_HASH_BYTES } from '../src/catalog/incremental.js';
import { BLOCK_SIZE } from '../src/backup/block-map.js';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { startPostgres, type PgServer } from '../test/harness/postgres.js';
import { startS3rver } from '../test/harness/s3rver.js';
import { wanConditions, wanOption } from './util.js';
import { startStore, type TestStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { openObjectStore } from '../src/storage/open.js';
import { recoveryManifest } from '../test/recovery/helpers.js';
import { pgbackrestConfig } from './pgbackrest.js';
import { loadBenchData, timed, waitArchiverIdle } from './database.js';

type Tool = 'pgark' | 'before' | 'barman' | 'pgbackrest';
type Codec = 'none' | 'gzip' | 'lz4' | 'zstd' | 'snappy' | 'bzip2';

const SCALE = Number(process.env.BENCH_SCALE ?? 50);
const TEXT_MB = Number(process.env.BENCH_TEXT_MB ?? 350);
/**
 * BENCH_BEFORE=DIR (a built checkout of another commit, e.g. `git worktree add /tmp/base main` +
 * its node_modules + tsc) adds tool `before`: that build's bin/pgark, run right after this one's on
 * the same database, for an A/B in one run.
 */
const BEFORE = process.env.BENCH_BEFORE;
const TOOLS = [...(process.env.BENCH_TOOLS ?? 'pgark,pgbackrest,barman').split(','), ...(BEFORE ? ['before'] : [])] as Tool[];
const CODECS = (process.env.BENCH_CODECS ?? 'none,gzip,lz4,zstd').split(',') as Codec[];
const JOBS = Number(process.env.BENCH_JOBS ?? 2);
const INCREMENTAL = process.argv.includes('--incremental');
const CHANGE_PCT = Number(process.env.BENCH_CHANGE_PCT ?? 2);
const SPREAD = process.env.BENCH_CHANGE_SPREAD === 'pages' ? 'pages' : 'contiguous';
/**
 * BENCH_KEEP_DATA=DIR: the loaded data directory is moved to DIR when the run ends, and a later run
 * with the same DIR starts from it instead of loading (BENCH_SCALE and BENCH_TEXT_MB are then
 * ignored): a 10 GB database takes many minutes to load. DIR must be on the scratch directory's file
 * system (a rename); remove it when done.
 */
const KEEP_DATA = process.env.BENCH_KEEP_DATA;
/**
 * BENCH_RESTORE=1: each backup of this build's pgark is restored right after it is taken, by the
 * same build (`pgark restore` of the latest backup into an empty directory, removed afterwards; no
 * WAL replay).
 */
const RESTORE = process.env.BENCH_RESTORE === '1';
/**
 * pgark runs as users run it, through its launcher (which sets glibc's malloc for a backup), on this
 * Node; to profile it, point PGARK_NODE at a script that runs `node --cpu-prof ... "$@"`.
 */
const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark');
/** BENCH_PGARK_LOG_LEVEL=info (or debug): pgark's log of each backup is printed after its line, its steps timed. */
const PGARK_LOG_LEVEL = process.env.BENCH_PGARK_LOG_LEVEL;
const PGARK_ENV = { PGARK_NODE: process.env.PGARK_NODE ?? process.execPath, PGARK_LOG_LEVEL: PGARK_LOG_LEVEL ?? 'warn' };

/** Which codec each tool uses for a column; undefined = the tool has none comparable. */
const PGARK_CODEC: Partial<Record<Codec, string[]>> = { none: ['none'], gzip: ['gzip'], lz4: ['lz4'], zstd: ['zstd'], snappy: ['snappy'], bzip2: ['bzip2'] };
const TOOL_CODEC: Record<Tool, Partial<Record<Codec, string[]>>> = {
  pgark: PGARK_CODEC,
  before: PGARK_CODEC,
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

/** CRC-32C of every 8 KiB page of every file under base/ and global/: what changed between two points, page by page. */
async function pageDigests(pgdata: string): Promise<Map<string, Uint32Array>> {
  const out = new Map<string, Uint32Array>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) {
        const data = await readFile(path).catch(() => undefined);
        if (!data) continue;
        const pages = new Uint32Array(Math.ceil(data.length / PAGE));
        for (let i = 0; i < pages.length; i++) pages[i] = crc32c(data.subarray(i * PAGE, (i + 1) * PAGE));
        out.set(relative(pgdata, path), pages);
      }
    }
  };
  for (const top of ['base', 'global']) await walk(join(pgdata, top));
  return out;
}

const PAGE = 8192;
const TAR_HEADER = 512;

/**
 * For each candidate block size, what a block-level incremental between the two page digests
 * stores (changed blocks plus a tar header each; new files whole) and what its block map weighs
 * (BLOCK_HASH_BYTES per block of every file): the measurement behind backup/block-map.ts BLOCK_SIZE.
 */
function blockSizeTable(before: Map<string, Uint32Array>, after: Map<string, Uint32Array>, sizes: Map<string, number>): string[] {
  const lines = ['block size   stored by a block incremental   block map'];
  for (const kib of [8, 16, 32, 64, 128, 256, 1024]) {
    const per = (kib * 1024) / PAGE;
    let stored = 0;
    let blocks = 0;
    for (const [path, pages] of after) {
      const size = sizes.get(path) ?? pages.length * PAGE;
      const was = before.get(path);
      const n = Math.ceil(pages.length / per);
      blocks += n;
      for (let b = 0; b < n; b++) {
        const changed = !was || pages.slice(b * per, (b + 1) * per).some((c, i) => was[b * per + i] !== c);
        if (changed) stored += Math.min(kib * 1024, size - b * kib * 1024) + TAR_HEADER;
      }
    }
    lines.push(`${String(kib).padStart(5)} KiB   ${mb(stored).padStart(8)} MB (${((100 * stored) / [...sizes.values()].reduce((a, b) => a + b, 0)).toFixed(2)} % of the files)   ${(blocks * BLOCK_HASH_BYTES / 1e6).toFixed(2)} MB (${blocks} blocks)`);
  }
  return lines;
}

/**
 * pgark full, then CHANGE_PCT % of pgbench_accounts updated (BENCH_CHANGE_SPREAD=contiguous: one
 * range of rows; pages: one page's rows in every 100/CHANGE_PCT pages), then pgark incremental;
 * prints the fractions and the block-size table.
 */
async function incrementalRun(pg: PgServer, store: TestStore, manifest: string, dbBytes: number): Promise<void> {
  const codec = CODECS[0];
  const backup = async (type: 'full' | 'incremental', prefix: string) => {
    await waitArchiverIdle(pg);
    const before = await prefixBytes(store, prefix);
    const args = ['backup', '-f', manifest, '--type', type, '--method', 'local', '--compression', codec, '--jobs', String(JOBS), '--immediate-checkpoint', '--pgdata', pg.pgdata, '--no-progress'];
    const r = await timed(PGARK, args, { ...pg.env, ...PGARK_ENV });
    if (r.code !== 0) throw new Error(`pgark backup --type ${type} failed: ${r.stderr.slice(-500)}`);
    return { seconds: r.seconds, bytes: (await prefixBytes(store, prefix)) - before, rssKb: r.rssKb };
  };
  const full = await backup('full', 'bench/base/');
  const atFull = await pageDigests(pg.pgdata);
  const [{ n }] = await pg.query<{ n: string }>('SELECT count(*)::text AS n FROM pgbench_accounts');
  const changed = Math.round((Number(n) * CHANGE_PCT) / 100);
  // pgbench_accounts holds 61 rows a page (fillfactor 100): `pages` changes about one page in every 100 / CHANGE_PCT.
  const where = SPREAD === 'pages' ? `((aid - 1) / 61) % ${Math.round(100 / CHANGE_PCT)} = 0` : `aid <= ${changed}`;
  const updated = await pg.query<{ n: string }>(`WITH u AS (UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ${where} RETURNING 1) SELECT count(*)::text AS n FROM u`);
  await pg.query('CHECKPOINT');
  const atIncremental = await pageDigests(pg.pgdata);
  const sizes = new Map(await Promise.all([...atIncremental.keys()].map(async (p) => [p, (await stat(join(pg.pgdata, p)).catch(() => ({ size: 0 }))).size] as const)));
  const [{ pages }] = await pg.query<{ pages: string }>(`SELECT pg_relation_size('pgbench_accounts') / 8192 AS pages`);
  const incr = await backup('incremental', 'bench/pgark-incremental/');
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
  const [load] = loadavg();
  console.log(`changed: ${updated[0].n} of ${n} pgbench_accounts rows (${CHANGE_PCT} %, ${SPREAD}), table now ${pages} pages; codec ${codec}; load average ${load.toFixed(1)}`);
  console.log(`full:        ${full.seconds.toFixed(1)} s, stored ${mb(full.bytes)} MB, peak RSS ${(full.rssKb / 1024).toFixed(0)} MiB`);
  console.log(`incremental: ${incr.seconds.toFixed(1)} s, stored ${mb(incr.bytes)} MB, peak RSS ${(incr.rssKb / 1024).toFixed(0)} MiB`);
  console.log(`incremental / full: bytes ${pct(incr.bytes, full.bytes)} (bar <= 5 %), time ${pct(incr.seconds, full.seconds)} (bar <= 25 %); database ${mb(dbBytes)} MB`);
  console.log(`\nblock size for block maps (pages changed between the full and the incremental; pgark uses ${BLOCK_SIZE / 1024} KiB):`);
  for (const line of blockSizeTable(atFull, atIncremental, sizes)) console.log(`  ${line}`);
}

async function main(): Promise<void> {
  const work = scratchDir('bench-backup');
  const s3 = await startS3rver({ tls: true, front: false, wan: wanOption() });
  console.log(wanConditions(wanOption()));
  const pgarkStore = await startStore('s3-tls', { s3rver: s3, prefix: 'pgark' });
  const barmanStore = await startStore('s3-tls', { s3rver: s3, prefix: 'barman' });
  const pg = await startPostgres({ major: 15, noStart: true, settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  let loaded = false;
  const reused = KEEP_DATA !== undefined && existsSync(join(KEEP_DATA, 'PG_VERSION'));
  if (reused) {
    rmSync(pg.pgdata, { recursive: true });
    renameSync(KEEP_DATA, pg.pgdata);
    // Its postgresql.conf names the last run's port and socket; the settings appended below come later and win.
    pg.configure({ port: pg.port, unix_socket_directories: join(pg.baseDir, 'sock') });
  }
  const results: Result[] = [];
  const cleanup = async () => {
    if (KEEP_DATA !== undefined && loaded) {
      await pg.stop('fast').catch(() => undefined);
      renameSync(pg.pgdata, KEEP_DATA);
    }
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
    const recoveryYaml = join(work.path, 'recovery.yaml');
    writeFileSync(recoveryYaml, recoveryManifest(pgarkStore, { name: 'restored', sourceName: 'bench', noBackup: true }));
    for (const f of [manifest, recoveryYaml]) chmodSync(f, 0o644);
    const pbrConf = pgbackrestConfig(work.path, s3, pg, '/pgbackrest', JOBS);
    // Both archivers only when pgBackRest is measured (each waits for its end segment in its own
    // repository). Without it, pgark's default archiving (the resident WAL daemon): two archivers
    // started per segment cost more than the copy, a backlog of minutes at 10 GB.
    const withPgbackrest = !INCREMENTAL && TOOLS.includes('pgbackrest');
    pg.configure({
      archive_mode: 'on',
      archive_command: withPgbackrest
        ? `${process.execPath} ${PGARK}.js wal-archive --no-daemon -f ${manifest} %p && pgbackrest --config=${pbrConf} --stanza=bench archive-push %p`
        : `${process.execPath} ${PGARK}.js wal-archive -f ${manifest} %p`,
    });
    await pg.start();
    const who = pg.who;
    const t0 = Date.now();
    if (!reused) await loadBenchData(pg, SCALE, TEXT_MB);
    loaded = true;
    const dbBytes = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
    console.log(`database: ${mb(dbBytes)} MB, ${reused ? `kept by an earlier run in ${KEEP_DATA}` : `pgbench scale ${SCALE} + ${TEXT_MB} MB of hex text, loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s`}`);
    const pbrEnv = { PGHOST: join(pg.baseDir, 'sock') };
    if (withPgbackrest) {
      const sc = await timed('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', 'stanza-create'], pbrEnv, who?.uid, who?.gid);
      if (sc.code !== 0) throw new Error(`pgbackrest stanza-create failed: ${sc.stderr}`);
    }

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
        if (tool === 'pgark' || tool === 'before') {
          const launcher = tool === 'before' ? join(BEFORE!, 'bin', 'pgark') : PGARK;
          const t0 = Date.now();
          r = await timed(launcher, ['backup', '-f', manifest, '--compression', codecArgs[0], '--jobs', String(JOBS), '--immediate-checkpoint', '--pgdata', pg.pgdata, '--no-progress'], { ...pg.env, ...PGARK_ENV });
          if (PGARK_LOG_LEVEL) printLog(r.stderr, t0);
          const before = results.filter((x) => x.tool === 'pgark' || x.tool === 'before').reduce((n, x) => n + x.storedBytes, 0);
          stored = (await prefixBytes(pgarkStore, 'bench/base/')) - before;
          if (RESTORE && tool === 'pgark' && r.code === 0) {
            const dir = join(work.path, 'restored');
            const rr = await timed(launcher, ['restore', '-f', recoveryYaml, '--pgdata', dir, '--jobs', String(JOBS)], PGARK_ENV);
            rmSync(dir, { recursive: true, force: true });
            console.log(
              `${codec.padEnd(6)} ${tool.padEnd(10)} load ${loadavg()[0].toFixed(1).padStart(4)} ${rr.code === 0 ? '' : 'FAILED '}restore ${rr.seconds.toFixed(1)} s  peak RSS ${(rr.rssKb / 1024).toFixed(0)} MiB  CPU ${rr.cpuSeconds.toFixed(1)} s${rr.code === 0 ? '' : `\n    ${rr.stderr.slice(-300)}`}`,
            );
          }
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
          `${codec.padEnd(6)} ${tool.padEnd(10)} load ${loadavg()[0].toFixed(1).padStart(4)} ${res.ok ? '' : 'FAILED '}${r.seconds.toFixed(1).padStart(7)} s ${(dbBytes / 1e6 / r.seconds).toFixed(1).padStart(7)} MB/s  stored ${mb(stored).padStart(6)} MB (ratio ${(dbBytes / Math.max(1, stored)).toFixed(2)})  peak RSS ${(r.rssKb / 1024).toFixed(0)} MiB  CPU ${r.cpuSeconds.toFixed(1)} s${res.note ? `\n    ${res.note}` : ''}`,
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
      console.log(`  ${codec.padEnd(6)} pgark ${p.seconds.toFixed(1)} s, ${(dbBytes / 1e6 / p.seconds).toFixed(1)} MB/s, peak RSS ${(p.peakRssKb / 1024).toFixed(0)} MiB; ${vs.join('; ')}`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

/** pgark's JSON log lines, each with its time since the command started, then anything else it wrote. */
function printLog(stderr: string, startedAt: number): void {
  for (const line of stderr.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as { time?: string | number; msg?: string };
      const at = e.time === undefined ? NaN : (new Date(e.time).getTime() - startedAt) / 1000;
      const { time: _time, level: _level, msg, ...rest } = e as Record<string, unknown>;
      console.log(`    +${at.toFixed(2)} s ${msg ?? ''} ${JSON.stringify(rest)}`);
    } catch {
      console.log(`    ${line}`);
    }
  }
}
