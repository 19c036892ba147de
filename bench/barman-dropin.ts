/**
 * pgark's barman-cloud drop-ins against Debian's barman-cloud 3.4, under the pattern in which
 * CloudNativePG's instance manager runs barman-cloud-wal-archive (barman-cloud-cli-contract.md §4.1):
 * for each archive_command call on the oldest .ready segment W, a spool hit (W stored as an extra
 * file of an earlier batch) succeeds without any tool; otherwise W and the next maxParallel-1 .ready
 * segments are archived by as many processes at once, and the extras get spool markers. PostgreSQL
 * marks only W .done. Both tools drain the same backlog of 16 MiB segments written by a real
 * PostgreSQL 15 (pgbench plus md5 text, about 2:1), to one s3rver, once per compression.
 *
 *   node dist/bench/barman-dropin.js [--segments 128] [--max-parallel 4] [--codecs none,gzip] [--tools pgark,barman] [--ceiling-puts 64]
 *   node dist/bench/barman-dropin.js --mode backup-restore [--scale 60] [--codec gzip] [--repeat 3] [--before DIR]   (see backupRestoreBench)
 *
 * Prints segments/s, pgark's rate over barman's, the stored compression ratio, and the peak of the
 * summed RSS of every process of the run (tools, launchers, pgark's daemon), sampled from /proc.
 * Then the same s3rver's ceiling (bench/store-ceiling putCeiling: raw PUTs of 16 MiB at maxParallel
 * at once, --ceiling-puts of them) and each drain as a fraction of it, with the load average at
 * every step: when the store is the bottleneck, a ratio between tools says less than that fraction.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createGunzip, gzipSync } from 'node:zlib';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { GZIP_LEVEL } from '../src/codec/streams.js';
import { walRuntime } from '../src/wal/runtime.js';
import { startS3rver, type S3rver } from '../test/harness/s3rver.js';
import { scratchDir } from '../test/harness/tmp.js';
import { BARMAN_PYTHON_ENV } from '../test/harness/barman.js';
import { putCeiling } from './store-ceiling.js';
import { childrenCpuSeconds, cpuSeconds, numberOption, option, procStatusKiB, storedBytes } from './util.js';
import { produceBacklog, toolDataDir, type Backlog } from './wal-backlog.js';

const SEGMENTS = numberOption('segments', 128);
const MAX_PARALLEL = numberOption('max-parallel', 4);
const CODECS = (option('codecs') ?? 'none,gzip').split(',');
/** --tools pgark: only the drop-ins, while iterating on them. */
const TOOLS = (option('tools') ?? 'pgark,barman').split(',').map((t): Tool => (t === 'pgark' ? 'pgark' : 'barman-cloud 3.4'));
const SEG_SIZE = 16 * 1024 * 1024;
const CEILING_PUTS = numberOption('ceiling-puts', 64);
const DROPINS = join(PACKAGE_ROOT, 'bin', 'barman-cloud');
/** --mode backup-restore: restores per tool, and another pgark build (its root) whose drop-ins restore pgark's backup too. */
const RESTORE_REPEAT = numberOption('repeat', 3);
const BEFORE_OPTION = option('before');
const BEFORE = BEFORE_OPTION ? resolve(BEFORE_OPTION) : undefined;

type Tool = 'pgark' | 'barman-cloud 3.4';

const cores = (): number => availableParallelism();

interface Result {
  tool: Tool;
  codec: string;
  seconds: number;
  /** Processes started (tool calls). */
  calls: number;
  /** 1-minute load average when the drain started. */
  load: number;
  /**
   * CPU seconds (user + system) of the tool calls with everything they waited for (launcher, sh
   * helpers, Python or Node), of pgark's daemon, and of s3rver: steadier than wall time on a
   * shared machine, where each drain's wall time is this work divided by the CPU share it gets.
   */
  cpu: { calls: number; daemon: number; store: number };
  /** The daemon's own peak RSS (VmHWM), 0 for barman-cloud: the figure its memory bar is about. */
  daemonPeakMiB: number;
  ratio: number;
  peakRssMiB: number;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/** run() under GNU time: also the user + system CPU seconds of the command and its children, steadier than wall time on a shared machine. */
async function runTimed(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stderr: string; seconds: number; cpu: number }> {
  const t0 = performance.now();
  const r = await run('/usr/bin/time', ['-f', 'BENCH_CPU=%U %S', cmd, ...args], env, cwd);
  const seconds = (performance.now() - t0) / 1000;
  const m = /BENCH_CPU=([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { ...r, seconds, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

/** Peak of the summed VmRSS of every process whose command line contains `needle`, sampled every 100 ms. */
function rssSampler(needle: string): { stop(): number } {
  let peak = 0;
  const sample = () => {
    let sum = 0;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) sum += procStatusKiB(Number(pid), 'VmRSS');
      } catch {
        // exited meanwhile
      }
    }
    peak = Math.max(peak, sum);
  };
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak / 1024;
    },
  };
}

/** CNPG's archiver (§4.1) over pgdata's .ready files; returns the tool calls it made. */
async function cnpgArchiver(pgdata: string, spool: string, call: (walPath: string) => Promise<{ code: number; stderr: string }>): Promise<number> {
  const status = join(pgdata, 'pg_wal', 'archive_status');
  const markDone = (name: string) => renameSync(join(status, `${name}.ready`), join(status, `${name}.done`));
  let calls = 0;
  for (let failures = 0; ; ) {
    const ready = readdirSync(status)
      .filter((f) => f.endsWith('.ready'))
      .map((f) => f.slice(0, -'.ready'.length))
      .sort();
    if (ready.length === 0) return calls;
    const [wal, ...rest] = ready;
    if (existsSync(join(spool, wal))) {
      unlinkSync(join(spool, wal));
      markDone(wal);
      continue;
    }
    const extras = rest.slice(0, MAX_PARALLEL - 1);
    // The requested file is PostgreSQL's relative %p; the extra ones are absolute.
    const results = await Promise.all([call(`pg_wal/${wal}`), ...extras.map((e) => call(join(pgdata, 'pg_wal', e)))]);
    calls += results.length;
    for (const [i, e] of extras.entries()) if (results[i + 1].code === 0) writeFileSync(join(spool, e), '');
    if (results[0].code !== 0) {
      if (++failures >= 5) throw new Error(`archiving ${wal} failed 5 times: ${results[0].stderr}`);
      continue;
    }
    markDone(wal);
  }
}

async function drain(tool: Tool, codec: string, s3: S3rver, work: string, backlog: Backlog): Promise<Result> {
  const prefix = `dropin-${tool === 'pgark' ? 'pgark' : 'barman'}-${codec}`;
  const dir = join(work, prefix);
  const pgdata = toolDataDir(dir, backlog.pgdata, backlog.segments);
  const spool = join(dir, 'wal-archive-spool');
  mkdirSync(spool);
  const creds = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_DEFAULT_REGION: s3.region, ...BARMAN_PYTHON_ENV };
  // By bare name through PATH, as CNPG runs them: pgark's drop-ins first on PATH, or Debian's in /usr/bin.
  const path = tool === 'pgark' ? `${DROPINS}:${dirname(process.execPath)}:${process.env.PATH}` : process.env.PATH;
  const env = { ...process.env, ...creds, PATH: path, PGARK_NODE: process.execPath, PGARK_WAL_DAEMON_IDLE_SECONDS: '600' };
  const argv = [...(codec === 'none' ? [] : [`--${codec}`]), '--endpoint-url', s3.endpoint, '--cloud-provider', 'aws-s3', `s3://${s3.bucket}/${prefix}`, 'bench'];
  const rss = rssSampler(prefix);
  const load = loadavg()[0];
  const [calls0, store0] = [childrenCpuSeconds(), cpuSeconds(s3.pid)];
  const t0 = performance.now();
  const calls = await cnpgArchiver(pgdata, spool, (walPath) => run('barman-cloud-wal-archive', [...argv, walPath], env, pgdata));
  const seconds = (performance.now() - t0) / 1000;
  const peakRssMiB = rss.stop();
  const cpu = { calls: childrenCpuSeconds() - calls0, daemon: 0, store: cpuSeconds(s3.pid) - store0 };
  let daemonPeakMiB = 0;
  const runtime = join(pgdata, 'pgark-wal');
  for (const d of existsSync(runtime) ? readdirSync(runtime) : []) {
    try {
      const pid = Number(readFileSync(walRuntime(pgdata, d).lockFile, 'utf8'));
      cpu.daemon += cpuSeconds(pid);
      daemonPeakMiB = Math.max(daemonPeakMiB, procStatusKiB(pid, 'VmHWM') / 1024);
      process.kill(pid, 'SIGTERM');
    } catch {
      // no daemon there
    }
  }
  const ratio = (backlog.segments.length * SEG_SIZE) / storedBytes(s3, prefix);
  rmSync(join(s3.dataDir, s3.bucket, prefix), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  return { tool, codec, seconds, calls, load, cpu, daemonPeakMiB, ratio, peakRssMiB };
}

async function main(): Promise<void> {
  const work = scratchDir('bench-dropin');
  const s3 = await startS3rver({ tls: false, front: false });
  let backlog: Backlog | undefined;
  const results: Result[] = [];
  let ceiling: { seconds: number; perSecond: number; load: number } | undefined;
  let deflate: Record<number, number> | undefined;
  try {
    process.stderr.write(`producing ${SEGMENTS} ready segments with PostgreSQL 15...\n`);
    backlog = await produceBacklog(SEGMENTS);
    for (const codec of CODECS) {
      for (const tool of TOOLS) {
        process.stderr.write(`${tool}, ${codec}...\n`);
        results.push(await drain(tool, codec, s3, work.path, backlog));
      }
    }
    if (CODECS.includes('gzip')) deflate = deflateFloor(backlog);
    process.stderr.write('store ceiling...\n');
    const load = loadavg()[0];
    ceiling = { ...(await putCeiling(s3, 'ceiling', MAX_PARALLEL, CEILING_PUTS)), load };
  } finally {
    await backlog?.cleanup();
    await s3.stop();
    work.cleanup();
  }
  const rate = (r: Result) => SEGMENTS / r.seconds;
  console.log(`\nbarman-cloud-wal-archive under CNPG's pattern: ${SEGMENTS} ready 16 MiB segments (PostgreSQL 15, pgbench + md5 text), maxParallel ${MAX_PARALLEL}, s3rver, ${new Date().toISOString()}`);
  console.log('tool              codec  seconds  segments/s  of ceiling  tool calls  stored ratio  peak RSS (all processes)  daemon peak  load  cpu s/segment: calls daemon s3rver');
  for (const r of results) {
    const perSegment = (s: number) => (s / SEGMENTS).toFixed(3).padStart(7);
    console.log(
      `${r.tool.padEnd(17)} ${r.codec.padEnd(6)} ${r.seconds.toFixed(1).padStart(7)} ${rate(r).toFixed(2).padStart(11)} ${`${((100 * rate(r)) / ceiling!.perSecond).toFixed(0)}%`.padStart(11)} ${String(r.calls).padStart(11)} ${r.ratio.toFixed(2).padStart(13)} ${`${r.peakRssMiB.toFixed(0)} MiB`.padStart(24)} ${(r.daemonPeakMiB ? `${r.daemonPeakMiB.toFixed(0)} MiB` : '-').padStart(12)} ${r.load.toFixed(1).padStart(5)}                ${perSegment(r.cpu.calls)}${perSegment(r.cpu.daemon)}${perSegment(r.cpu.store)}`,
    );
  }
  console.log(`store ceiling: ${CEILING_PUTS} raw PUTs of 16 MiB, ${MAX_PARALLEL} at once: ${ceiling!.seconds.toFixed(1)} s, ${ceiling!.perSecond.toFixed(2)} objects/s (load ${ceiling!.load.toFixed(1)})`);
  for (const codec of CODECS) {
    const p = results.find((r) => r.tool === 'pgark' && r.codec === codec);
    const b = results.find((r) => r.tool === 'barman-cloud 3.4' && r.codec === codec);
    if (p && b) console.log(`${codec}: pgark / barman-cloud 3.4 = ${(rate(p) / rate(b)).toFixed(1)}x segments/s (target >= 8x)`);
    if (codec === 'gzip' && p && deflate) {
      // The CPU no gzip archiver here avoids: the store's and the calls' (as measured), and deflate itself.
      const fixed = (p.cpu.calls + p.cpu.store) / SEGMENTS;
      const most = (level: number) => `${(cores() / (fixed + deflate![level])).toFixed(2)} segments/s${b ? ` = ${(cores() / (fixed + deflate![level]) / rate(b)).toFixed(1)}x barman` : ''}`;
      console.log(
        `gzip bound: zlib deflate alone costs ${deflate[GZIP_LEVEL].toFixed(3)} CPU s/segment at pgark's level ${GZIP_LEVEL} (${deflate[1].toFixed(3)} at level 1); ` +
          `with the calls' and s3rver's ${fixed.toFixed(3)}, ${cores()} cores archive at most ${most(GZIP_LEVEL)} (${most(1)} at level 1), before any reading, hashing or uploading`,
      );
    }
  }
}

/** The stored gzip tars of each backup in the bench's s3rver, by backup ID (the folder under base/). */
function storedTars(s3: S3rver): Map<string, string[]> {
  const byBackup = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.tar\.gz\._S3rver_object$/.test(e.name) && basename(dirname(dirname(p))) === 'base') {
        const id = basename(dirname(p));
        byBackup.set(id, [...(byBackup.get(id) ?? []), p]);
      }
    }
  };
  walk(join(s3.dataDir, s3.bucket));
  return byBackup;
}

/** CPU seconds (all threads: zlib inflates on libuv's pool) to inflate `files` one after the other, output dropped. */
async function inflateCpuSeconds(files: string[]): Promise<number> {
  const c0 = process.cpuUsage();
  for (const f of files) {
    await pipeline(
      createReadStream(f, { highWaterMark: 256 * 1024 }),
      createGunzip({ chunkSize: 256 * 1024 }),
      new Writable({ write: (_chunk, _enc, cb) => cb() }),
    );
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** CPU seconds zlib's one-shot deflate takes per backlog segment, at pgark's gzip level and at level 1 (the fastest). */
function deflateFloor(backlog: Backlog): Record<number, number> {
  const sample = backlog.segments.slice(0, 16).map((name) => readFileSync(join(backlog.pgdata, 'pg_wal', name)));
  const floor: Record<number, number> = {};
  for (const level of [1, GZIP_LEVEL]) {
    const c0 = process.cpuUsage();
    for (const segment of sample) gzipSync(segment, { level });
    const c = process.cpuUsage(c0);
    floor[level] = (c.user + c.system) / 1e6 / sample.length;
  }
  return floor;
}

/*
 * --mode backup-restore (b2): barman-cloud-backup and barman-cloud-restore, pgark's drop-ins against
 * Debian's barman-cloud 3.4, on one PostgreSQL 15 database (pgbench, --scale, default 60: about
 * 1 GB) and one s3rver, with the argv CNPG builds (--user postgres --name ... --immediate-checkpoint
 * --jobs 2). Each tool restores its own backup into an empty directory, --repeat times, the tools
 * taking turns so that the machine's load falls on both alike; --before DIR adds another pgark
 * build's drop-ins (e.g. main's) restoring pgark's backup in the same turns. Prints each step's
 * times, CPU seconds (GNU time) and the load average, and the ratio of the best times (target >= 3x).
 *
 * Both tools wait at backup stop until the end WAL segment is archived: barman 3.4 calls
 * pg_backup_stop() with its default wait_for_archive (postgres.py stop_concurrent_backup), so
 * PostgreSQL switches WAL and waits for its archiver; pgark waits until the segment is in the
 * store. The archiver is drained before each backup, so that neither pays for the WAL that
 * pgbench -i left (about 1 GB, archived by one `pgark wal-archive` process per segment), which
 * the first tool to run used to wait for alone.
 */
async function backupRestoreBench(): Promise<void> {
  const { execFileSync } = await import('node:child_process');
  const { startStore } = await import('../test/harness/stores.js');
  const { startArchivingServer } = await import('../test/backup/helpers.js');
  const { waitArchiverIdle } = await import('./database.js');
  const scale = numberOption('scale', 60);
  const codec = option('codec') ?? 'gzip';
  const work = scratchDir('bench-dropin-backup');
  const s3 = await startS3rver({ tls: false, front: false });
  const store = await startStore('s3', { s3rver: s3 });
  const server = await startArchivingServer(store);
  const lines: string[] = [];
  try {
    process.stderr.write(`pgbench -i -s ${scale}...\n`);
    const pg = server.pg;
    execFileSync(pg.bin.path('pgbench'), ['-i', '-q', '-s', String(scale), '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
    const size = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
    await pg.query('CHECKPOINT');
    const creds = store.barman!.env;
    const prov = [...store.barman!.args];
    const backupTimes = new Map<Tool, number>();
    const envFor = (dropins: string | undefined) => ({
      ...process.env,
      ...creds,
      PATH: dropins ? `${dropins}:${dirname(process.execPath)}:${process.env.PATH}` : process.env.PATH,
      PGARK_NODE: process.execPath,
      PGHOST: pg.env.PGHOST,
      PGPORT: pg.env.PGPORT,
      PGDATA: pg.pgdata,
      TMPDIR: work.path,
    });
    const backupName = (tool: Tool) => `bench-${tool === 'pgark' ? 'pgark' : 'barman'}-${codec}`;
    for (const tool of ['pgark', 'barman-cloud 3.4'] as Tool[]) {
      await waitArchiverIdle(pg);
      process.stderr.write(`${tool}: backup...\n`);
      const t0 = performance.now();
      const b = await run('barman-cloud-backup', ['--user', 'postgres', '--name', backupName(tool), `--${codec}`, '--immediate-checkpoint', '--jobs', '2', ...prov, store.destinationPath, server.clusterName], envFor(tool === 'pgark' ? DROPINS : undefined), work.path);
      backupTimes.set(tool, (performance.now() - t0) / 1000);
      if (b.code !== 0) throw new Error(`${tool} backup exited ${b.code}: ${b.stderr}`);
    }
    const restorers: { label: string; dropins: string | undefined; backup: Tool }[] = [
      { label: 'pgark', dropins: DROPINS, backup: 'pgark' },
      ...(BEFORE ? [{ label: 'before', dropins: join(BEFORE, 'bin', 'barman-cloud'), backup: 'pgark' as Tool }] : []),
      { label: 'barman-cloud 3.4', dropins: undefined, backup: 'barman-cloud 3.4' },
    ];
    const restores = new Map<string, { seconds: number; cpu: number; load: number }[]>(restorers.map((r) => [r.label, []]));
    for (let i = 0; i < RESTORE_REPEAT; i++) {
      for (const r of restorers) {
        const dest = join(work.path, 'restore');
        process.stderr.write(`${r.label}: restore ${i + 1}/${RESTORE_REPEAT}...\n`);
        const load = loadavg()[0];
        const t = await runTimed('barman-cloud-restore', [...prov, store.destinationPath, server.clusterName, backupName(r.backup), dest], envFor(r.dropins), work.path);
        if (t.code !== 0) throw new Error(`${r.label} restore exited ${t.code}: ${t.stderr}`);
        restores.get(r.label)!.push({ seconds: t.seconds, cpu: t.cpu, load });
        rmSync(dest, { recursive: true, force: true });
      }
    }
    lines.push(`\nbarman-cloud-backup / -restore, CNPG's argv (--${codec}, --jobs 2): PostgreSQL 15, pgbench scale ${scale} (${(size / 1024 / 1024).toFixed(0)} MiB), s3rver, ${new Date().toISOString()}`);
    const pb = backupTimes.get('pgark')!;
    const bb = backupTimes.get('barman-cloud 3.4')!;
    lines.push(`backup   pgark ${pb.toFixed(1)} s   barman-cloud 3.4 ${bb.toFixed(1)} s   ratio ${(bb / pb).toFixed(1)}x (target >= 3x)`);
    const best = (label: string) => Math.min(...restores.get(label)!.map((t) => t.seconds));
    for (const [label, runs] of restores) {
      lines.push(`restore  ${label.padEnd(17)} ${runs.map((t) => `${t.seconds.toFixed(1)} s (cpu ${t.cpu.toFixed(1)} s, load ${t.load.toFixed(1)})`).join(', ')}`);
    }
    const ratio = best('barman-cloud 3.4') / best('pgark');
    const cpuRatio = Math.min(...restores.get('barman-cloud 3.4')!.map((t) => t.cpu)) / Math.min(...restores.get('pgark')!.map((t) => t.cpu));
    lines.push(`restore  best of ${RESTORE_REPEAT}: barman / pgark = ${ratio.toFixed(2)}x wall, ${cpuRatio.toFixed(2)}x cpu (target >= 3x)${BEFORE ? `; before / pgark = ${(best('before') / best('pgark')).toFixed(2)}x wall` : ''}`);
    if (codec === 'gzip') {
      // What no restore of these backups avoids: inflating them. 3x barman's best wall time on this
      // machine's cores leaves cores x that many CPU seconds for everything.
      const budget = (availableParallelism() * best('barman-cloud 3.4')) / 3;
      for (const [id, files] of storedTars(s3)) {
        const cpu = await inflateCpuSeconds(files);
        lines.push(`restore  bound: inflating backup ${id}'s ${files.length} tar(s) alone takes ${cpu.toFixed(2)} CPU s; 3x barman-cloud's best (${(best('barman-cloud 3.4') / 3).toFixed(2)} s on ${availableParallelism()} cores) allows ${budget.toFixed(2)} CPU s for all the work`);
      }
    }
    console.log(lines.join('\n'));
  } finally {
    await server.pg.destroy();
    await store.stop();
    await s3.stop();
    work.cleanup();
  }
}

(option('mode') === 'backup-restore' ? backupRestoreBench() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
