/**
 * Recovery-time benchmark: one PostgreSQL 15 database (pgbench plus ~2:1 text, bench/database.ts)
 * backed up to one TLS s3rver by pgark (each --codecs entry), pgBackRest 2.45 (zst, process-max 2)
 * and barman-cloud 3.4 (--barman-codec), in one run. Then:
 *   1. data step: each backup restored into an empty directory (pgark restore, pgbackrest restore,
 *      barman-cloud-restore), and its two bounds: the store's read ceiling (the same pgark objects
 *      fetched with pgark's S3 driver, `jobs` at a time, bytes dropped: no codec, no tar, no disk)
 *      and the extraction floor (those objects from local disk through the system's decoder and
 *      GNU tar, then syncfs: no store, no checks);
 *   2. recovery: --wal-mb of WAL written after the backups, then each tool restores its last
 *      backup, replays the archive to its end and promotes: pgark restore --start (prefetching
 *      restore_command, wal.maxParallel --prefetch), pgBackRest (archive-get async), barman
 *      (barman-cloud-wal-restore), and the physical limit: the same WAL replayed with
 *      `cp` from a local directory onto pgark's restored data directory.
 * --wal-codec compresses the archived WAL: pgark's wal.compression, pgBackRest's compress-type for
 * archive-push (snappy, which it lacks: lz4), barman-cloud-wal-archive's flag (3.4 has gzip, bzip2
 * and snappy; for another codec: snappy). Uncompressed WAL is 16 MiB per segment to fetch.
 * Phases come from the server log's own timestamps: data (the tool's command started to the
 * postmaster's start: the tool's own start, its checks, the download and whatever it writes
 * before PostgreSQL runs, for every tool alike), start (postmaster start to "redo starts"),
 * replay ("redo starts" to "redo done", which includes every WAL fetch), promotion ("redo done" to
 * "ready to accept connections"). Replay's bound on this machine: the startup process's own CPU
 * (from its "redo done" line) and every core's busy time in replay's window (/proc/stat, the
 * store's processes apart), max(startup CPU, busy / cores). Peak RSS is VmHWM of every process of
 * a run (the command, its descendants, the postmaster and its children, pgark's WAL daemon),
 * sampled from /proc.
 *
 *   node dist/bench/restore.js [--scale 50] [--text-mb 350] [--wal-mb 500] [--codecs none,lz4,gzip,zstd]
 *                              [--barman-codec gzip] [--wal-codec none] [--prefetch 8] [--repeat 2] [--tools pgark,pgbackrest,barman,local]
 *                              [--before DIR]   (another pgark build, e.g. main's, restoring the same backups)
 *   BENCH_PGARK_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles pgark's own process.
 *   BENCH_PGARK_LOG_LEVEL=debug makes every restore_command call log who answered it and how long it
 *   took and when it finished (src/wal/client.ts, bin/pgark), the count of Node starts per recovery,
 *   the WAL daemon's per-file timings and the CPU of the daemon, the store and replay (the bound on
 *   fetching); it adds two `date` forks per call, so measure without it.
 */
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { chownTree, mkdirForServer, pgCtlStart, pgCtlStop } from '../src/pg/local-server.js';
import { openObjectStore } from '../src/storage/open.js';
import { freePort } from '../test/harness/ports.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startS3rver } from '../test/harness/s3rver.js';
import { startStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { recoveryManifest } from '../test/recovery/helpers.js';
import { stopWalDaemon } from '../test/wal/helpers.js';
import { loadBenchData, waitArchiverIdle } from './database.js';
import { pgbackrestConfig } from './pgbackrest.js';
import { cpuSeconds, MachineCpu, numberOption, pidsMatching, option, procStatusKiB, wanConditions, wanOption } from './util.js';

const SCALE = numberOption('scale', 50);
const TEXT_MB = numberOption('text-mb', 350);
const WAL_MB = numberOption('wal-mb', 500);
/** The last one is the backup pgark recovers from in step 2. */
const CODECS = (option('codecs') ?? 'none,lz4,gzip,zstd').split(',');
const BARMAN_CODEC = option('barman-codec') ?? 'gzip';
const WAL_CODEC = option('wal-codec') ?? 'none';
const PGBACKREST_CODECS: Record<string, string> = { none: 'none', gzip: 'gz', zstd: 'zst', lz4: 'lz4', bzip2: 'bz2' };
const BARMAN_WAL_FLAGS: Record<string, string[]> = { none: [], gzip: ['--gzip'], bzip2: ['--bzip2'], snappy: ['--snappy'] };
const walCodecs = {
  pgark: WAL_CODEC,
  pgbackrest: PGBACKREST_CODECS[WAL_CODEC] ?? 'lz4',
  barman: BARMAN_WAL_FLAGS[WAL_CODEC] ? WAL_CODEC : 'snappy',
};
const PREFETCH = numberOption('prefetch', 8);
const REPEAT = numberOption('repeat', 2);
const TOOLS = (option('tools') ?? 'pgark,pgbackrest,barman,local').split(',');
const JOBS = 2;
const PGARK_JS = join(PACKAGE_ROOT, 'bin', 'pgark.js');
const PGARK_LAUNCHER = join(PACKAGE_ROOT, 'bin', 'pgark');
/** Another pgark build (e.g. main's) whose restore runs beside this one's, on the same backups, for before/after figures. */
const BEFORE = option('before');
const PGARK_BUILDS: { label: string; js: string }[] = [
  { label: 'pgark', js: PGARK_JS },
  ...(BEFORE ? [{ label: 'before', js: join(resolve(BEFORE), 'bin', 'pgark.js') }] : []),
];
const NODE_ARGS = (process.env.BENCH_PGARK_NODE_ARGS ?? '').split(' ').filter(Boolean);
/**
 * The pgark builds in repeat `i`'s order: alternated, since a run's first restore is slower
 * whichever build makes it (1 GB, 2026-12-07: recovery data step 7.0-7.7 s against 4.6-5.5 s
 * after it, in three runs; a `sync` before each run did not change that), and a fixed order
 * handed the slow slot to one build in every before/after pair.
 */
const buildsInTurn = (i: number) => (i % 2 === 0 ? PGARK_BUILDS : [...PGARK_BUILDS].reverse());

/** Peak VmHWM (KiB) by process kind, over every process of one run. */
class RssSampler {
  readonly peaks = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: number | undefined,
    private readonly extraRoots: () => number[],
  ) {
    this.timer = setInterval(() => this.sample(), 100);
  }

  stop(): Map<string, number> {
    clearInterval(this.timer);
    this.sample();
    return this.peaks;
  }

  private sample(): void {
    const children = new Map<number, number[]>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
        children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
      } catch {
        // gone meanwhile
      }
    }
    const todo = [...(this.root === undefined ? [] : [this.root]), ...this.extraRoots()];
    const seen = new Set<number>();
    while (todo.length) {
      const pid = todo.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      todo.push(...(children.get(pid) ?? []));
      const kind = processKind(pid);
      const kib = procStatusKiB(pid, 'VmHWM');
      if (kind && kib > (this.peaks.get(kind) ?? 0)) this.peaks.set(kind, kib);
    }
  }
}

/** A short name for what a process is ("pgark restore", "postgres: startup", "barman-cloud-wal-restore"); undefined for shells. */
function processKind(pid: number): string | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
  if (!argv.length) return undefined;
  if (argv[0].startsWith('postgres:')) return argv[0].split(' ').slice(0, 2).join(' ');
  const exe = basename(argv[0]);
  if (exe === 'sh' || exe === 'time') return undefined;
  if (exe.startsWith('node')) {
    if (argv.some((a) => a.endsWith('daemon-main.js'))) return 'pgark WAL daemon';
    const i = argv.findIndex((a) => a.endsWith('pgark.js'));
    return i >= 0 ? `pgark ${argv[i + 1]}` : 'node';
  }
  if (exe.startsWith('python')) return basename(argv[1] ?? exe);
  if (exe === 'pgbackrest') return `pgbackrest ${argv.find((a) => /^[a-z-]+(:[a-z]+)?$/.test(a) && a !== 'pgbackrest') ?? ''}`.trim();
  return exe;
}

function readPid(file: string): number[] {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return pid > 0 ? [pid] : [];
  } catch {
    return [];
  }
}

interface Run {
  code: number;
  seconds: number;
  /** User + system CPU seconds of the command and the children it waited for (GNU time); steadier than wall time on a shared machine. */
  cpu: number;
  stdout: string;
  stderr: string;
  peaks: Map<string, number>;
}

/** Runs a command to its end, sampling the RSS of it and of the processes `extraRoots` names. */
function measured(cmd: string, args: string[], opts: { env?: Record<string, string>; uid?: number; gid?: number; extraRoots?: () => number[] } = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'BENCH_CPU=%U %S', cmd, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid, cwd: '/tmp' });
    const sampler = new RssSampler(child.pid!, opts.extraRoots ?? (() => []));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const cpu = /BENCH_CPU=([\d.]+) ([\d.]+)/.exec(stderr);
      resolvePromise({ code: code ?? 1, seconds: (performance.now() - t0) / 1000, cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN, stdout, stderr, peaks: sampler.stop() });
    });
  });
}

function mustSucceed(what: string, r: Run): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return r;
}

/** The ms timestamp (s since the epoch) of a log line written with PostgreSQL's default log_line_prefix ('%m [%p] '). */
function lineTime(line: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (\S+)/.exec(line);
  if (!m) return undefined;
  if (m[3] !== 'UTC' && m[3] !== 'GMT') throw new Error(`server log times are in ${m[3]}: run the benchmark with TZ=UTC`);
  return Date.parse(`${m[1]}T${m[2]}Z`) / 1000;
}

/**
 * Phase times (s) of the last server start in a log: to "redo starts", to "redo done", to "ready to
 * accept connections"; when replay began and ended (s since the epoch), and the CPU seconds the
 * startup process itself reported for it (its restore_command children are not in them).
 */
function logPhases(log: string): { start: number; replay: number; promotion: number; startedAt: number; readyAt: number; redoAt: number; doneAt: number; replayCpu?: number } | undefined {
  const lines = log.split('\n');
  const from = lines.findLastIndex((l) => /starting PostgreSQL/.test(l));
  if (from < 0) return undefined;
  const time = (re: RegExp) => {
    const line = lines.slice(from).find((l) => re.test(l));
    return line === undefined ? undefined : lineTime(line);
  };
  const [start, redo, done, ready] = [/starting PostgreSQL/, /redo starts at/, /redo done at/, /database system is ready to accept connections/].map(time);
  if (start === undefined || redo === undefined || done === undefined || ready === undefined) return undefined;
  const cpu = /redo done at .* CPU: user: ([\d.]+) s, system: ([\d.]+) s/.exec(lines.slice(from).join('\n'));
  return { start: redo - start, replay: done - redo, promotion: ready - done, startedAt: start, readyAt: ready, redoAt: redo, doneAt: done, replayCpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined };
}

/** Waits until the server logging to `logFile` is promoted (no deadline: a benchmark is watched). */
async function waitPromoted(logFile: string): Promise<void> {
  for (;;) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    if (logPhases(log)) return;
    const fatal = log.split('\n').find((l) => /(FATAL|PANIC): /.test(l) && !/starting up|not yet accepting/.test(l));
    if (fatal) throw new Error(`server failed: ${fatal}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Row {
  what: string;
  data?: number;
  cpu?: number;
  start?: number;
  replay?: number;
  promotion?: number;
  total: number;
  peaks: Map<string, number>;
  /** Replay's window (s since the epoch) and the startup process's own CPU seconds in it. */
  redoAt?: number;
  doneAt?: number;
  replayCpu?: number;
  /** Busy CPU seconds during replay (MachineCpu): of the whole machine, and of the store's processes. */
  replayBusy?: number;
  replayStoreBusy?: number;
}

function fmt(n: number | undefined): string {
  return n === undefined ? '    -' : n.toFixed(1).padStart(6);
}

function peaksText(peaks: Map<string, number>): string {
  return [...peaks]
    .sort((a, b) => b[1] - a[1])
    .filter(([, kib]) => kib > 20 * 1024)
    .map(([kind, kib]) => `${kind} ${(kib / 1024).toFixed(0)}`)
    .join(', ');
}

async function main(): Promise<void> {
  const work = scratchDir('bench-restore');
  chmodSync(work.path, 0o755);
  const s3 = await startS3rver({ tls: true, front: false, wan: wanOption() });
  console.log(wanConditions(wanOption()));
  console.log(`archived WAL: pgark ${walCodecs.pgark}, pgBackRest ${walCodecs.pgbackrest}, barman-cloud ${walCodecs.barman}`);
  const pgarkStore = await startStore('s3-tls', { s3rver: s3, prefix: 'pgark' });
  const barmanStore = await startStore('s3-tls', { s3rver: s3, prefix: 'barman' });
  const pg = await startPostgres({ major: 15, noStart: true, settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  const who = pg.who;
  const servers: string[] = [];
  const cleanup = async () => {
    for (const d of servers) await pgCtlStop(pg.bin, d, who, 'immediate').catch(() => undefined);
    await pg.destroy();
    await pgarkStore.stop();
    await barmanStore.stop();
    await s3.stop();
    work.cleanup();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  const dataRows: Row[] = [];
  const recoveryRows: Row[] = [];
  try {
    const manifest = join(work.path, 'cluster.yaml');
    writeFileSync(manifest, pgarkStore.manifest({ clusterName: 'bench', objectStore: { data: { jobs: JOBS }, wal: { maxParallel: PREFETCH, ...(WAL_CODEC === 'none' ? {} : { compression: WAL_CODEC }) } } }));
    const recoveryYaml = join(work.path, 'recovery.yaml');
    writeFileSync(recoveryYaml, recoveryManifest(pgarkStore, { name: 'restored', sourceName: 'bench', maxParallel: PREFETCH, noBackup: true }));
    for (const f of [manifest, recoveryYaml]) chmodSync(f, 0o644);
    const localWal = join(work.path, 'wal-local');
    mkdirSync(localWal, { mode: 0o777 });
    chmodSync(localWal, 0o777);
    const pbrConf = pgbackrestConfig(work.path, s3, pg, '/pgbackrest', JOBS);
    appendFileSync(pbrConf, '[global:archive-get]\narchive-async=y\n');
    const b = barmanStore.barman!;
    const barmanVars = Object.entries(b.env).map(([k, v]) => `${k}=${v}`);
    const archiveChain = [
      `PGARK_NODE=${process.execPath} ${PGARK_LAUNCHER} wal-archive -f ${manifest} %p`,
      `pgbackrest --config=${pbrConf} --stanza=bench --compress-type=${walCodecs.pgbackrest} archive-push %p`,
      `env ${barmanVars.join(' ')} barman-cloud-wal-archive ${[...b.args, ...BARMAN_WAL_FLAGS[walCodecs.barman]].join(' ')} ${barmanStore.destinationPath} bench %p`,
      `cp %p ${localWal}/%f`,
    ];
    pg.configure({ archive_mode: 'on', archive_command: '/bin/true' });
    await pg.start();
    const t0 = Date.now();
    await loadBenchData(pg, SCALE, TEXT_MB);
    const dbBytes = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
    console.log(`database: ${(dbBytes / 1e6).toFixed(0)} MB (pgbench scale ${SCALE} + ${TEXT_MB} MB of hex text), loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${new Date().toISOString()}`);
    pg.configure({ archive_command: archiveChain.join(' && ') });
    await pg.query('SELECT pg_reload_conf()');
    const pbrEnv = { PGHOST: join(pg.baseDir, 'sock') };
    mustSucceed('pgbackrest stanza-create', await measured('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', 'stanza-create'], { env: pbrEnv, uid: who?.uid, gid: who?.gid }));

    const target = (label: string) => {
      const dir = join(work.path, label);
      rmSync(dir, { recursive: true, force: true });
      return dir;
    };
    const serverDir = (label: string) => {
      const dir = target(label);
      mkdirForServer(dir, who);
      return dir;
    };

    // 1. Data step, each backup restored right after it was taken (so it is the latest).
    console.log('\n1. data step: backup restored into an empty directory');
    const pgarkRestore = (dir: string, extra: string[] = [], js = PGARK_JS) =>
      measured(process.execPath, [...NODE_ARGS, js, 'restore', '-f', recoveryYaml, '--pgdata', dir, '--jobs', String(JOBS), '--json', ...extra], {
        env: { PGARK_LOG_LEVEL: process.env.BENCH_PGARK_LOG_LEVEL ?? 'warn', PGARK_WAL_DAEMON_IDLE_SECONDS: '30' },
        extraRoots: () => [...readPid(join(dir, 'postmaster.pid')), ...readPid(join(dir, 'pgark-wal', 'daemon.lock'))],
      });
    let ceiling: { seconds: number; bytes: number } | undefined;
    let floor: { extract: number; sync: number } | undefined;
    let barmanBackup = '';
    let backupId = '';
    for (const codec of CODECS) {
      await waitArchiverIdle(pg);
      mustSucceed(`pgark backup ${codec}`, await measured(process.execPath, [PGARK_JS, 'backup', '-f', manifest, '--compression', codec, '--jobs', String(JOBS), '--immediate-checkpoint', '--pgdata', pg.pgdata, '--no-progress'], { env: { ...pg.env, PGARK_LOG_LEVEL: 'warn' } }));
      for (let i = 0; i < REPEAT; i++) {
        for (const build of codec === CODECS.at(-1) ? buildsInTurn(i) : PGARK_BUILDS.slice(0, 1)) {
          const dir = target(`${build.label}-${codec}`);
          const r = mustSucceed(`${build.label} restore (${codec})`, await pgarkRestore(dir, [], build.js));
          dataRows.push({ what: `${build.label} ${codec}`, data: r.seconds, cpu: r.cpu, total: r.seconds, peaks: r.peaks });
          backupId = JSON.parse(r.stdout).plan.backup.id;
        }
        if (codec === CODECS.at(-1)) {
          const c = await storeCeiling(pgarkStore.resolved(), backupId);
          if (!ceiling || c.seconds < ceiling.seconds) ceiling = c;
        }
      }
      if (codec === CODECS.at(-1)) floor = await extractionFloor(pgarkStore.resolved(), backupId, codec, work.path);
    }
    if (TOOLS.includes('pgbackrest')) {
      await waitArchiverIdle(pg);
      mustSucceed('pgbackrest backup', await measured('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', '--compress-type=zst', '--type=full', 'backup'], { env: pbrEnv, uid: who?.uid, gid: who?.gid }));
      for (let i = 0; i < REPEAT; i++) {
        const dir = serverDir('pgbackrest');
        const r = mustSucceed('pgbackrest restore', await measured('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', `--pg1-path=${dir}`, 'restore'], { uid: who?.uid, gid: who?.gid }));
        dataRows.push({ what: 'pgbackrest zst', data: r.seconds, cpu: r.cpu, total: r.seconds, peaks: r.peaks });
      }
    }
    if (TOOLS.includes('barman')) {
      await waitArchiverIdle(pg);
      mustSucceed('barman-cloud-backup', await measured('barman-cloud-backup', [...b.args, `--${BARMAN_CODEC}`, '--immediate-checkpoint', '-J', String(JOBS), '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', barmanStore.destinationPath, 'bench'], { env: b.env }));
      // barman-cloud-restore 3.4 knows no "latest".
      const list = mustSucceed('barman-cloud-backup-list', await measured('barman-cloud-backup-list', [...b.args, '--format', 'json', barmanStore.destinationPath, 'bench'], { env: b.env }));
      barmanBackup = (JSON.parse(list.stdout) as { backups_list: { backup_id: string }[] }).backups_list.at(-1)!.backup_id;
      for (let i = 0; i < REPEAT; i++) {
        const dir = serverDir('barman');
        const r = mustSucceed('barman-cloud-restore', await measured('barman-cloud-restore', [...b.args, barmanStore.destinationPath, 'bench', barmanBackup, dir], { env: b.env, uid: who?.uid, gid: who?.gid }));
        dataRows.push({ what: `barman ${BARMAN_CODEC}`, data: r.seconds, cpu: r.cpu, total: r.seconds, peaks: r.peaks });
      }
    }
    printRows(dataRows, 'data step (s)');
    if (ceiling) {
      const best = Math.min(...dataRows.filter((r) => r.what === `pgark ${CODECS.at(-1)}`).map((r) => r.data!));
      console.log(`store read ceiling (best of ${REPEAT}): ${(ceiling.bytes / 1e6).toFixed(0)} MB of pgark ${CODECS.at(-1)} objects fetched ${JOBS} at a time in ${ceiling.seconds.toFixed(1)} s (${(ceiling.bytes / 1e6 / ceiling.seconds).toFixed(0)} MB/s); pgark's data step takes ${(best / ceiling.seconds).toFixed(2)}x that`);
      if (floor) {
        const bound = Math.max(ceiling.seconds, floor.extract + floor.sync);
        console.log(`extraction floor (best of ${REPEAT}): the same objects from local disk, \`${NATIVE_DECODER[CODECS.at(-1)!]} | tar -x\` ${JOBS} at a time, ${floor.extract.toFixed(2)} s, then syncfs ${floor.sync.toFixed(2)} s; the data step's bound max(read ceiling, floor) = ${bound.toFixed(2)} s, pgark's data step takes ${(best / bound).toFixed(2)}x it`);
      }
    }

    // 2. Recovery to the end of WAL_MB of WAL written after every backup.
    const lsn0 = (await pg.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0].l;
    await pg.query('CREATE TABLE wal_load (id bigserial, a text, b text)');
    for (;;) {
      const [w] = await pg.query<{ mb: number }>(`SELECT (pg_current_wal_lsn() - '${lsn0}'::pg_lsn)::float8 / 1e6 AS mb`);
      if (w.mb >= WAL_MB) break;
      await pg.query(`INSERT INTO wal_load (a, b) SELECT md5(random()::text) || md5(random()::text), md5(random()::text) FROM generate_series(1, 200000)`);
      await pg.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 50 = 0');
    }
    const t1 = Date.now();
    await waitArchiverIdle(pg);
    const lastSegment = readdirSync(localWal).filter((f) => f.length === 24).sort().at(-1);
    console.log(`\n2. recovery: ${WAL_MB} MB of WAL after the backups (archive ends at ${lastSegment}; archived by all three in ${((Date.now() - t1) / 1000).toFixed(0)} s more), replayed to its end and promoted`);
    const startAndWait = async (dir: string, extra: Record<string, string>): Promise<Run> => {
      const port = await freePort();
      const settings = { port: String(port), listen_addresses: '127.0.0.1', unix_socket_directories: '', archive_mode: 'off', ...extra };
      appendFileSync(join(dir, 'postgresql.auto.conf'), Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/'/g, "''")}'\n`).join(''));
      writeFileSync(join(dir, 'recovery.signal'), '');
      chownTree(dir, who);
      const logFile = join(dir, 'bench-server.log');
      servers.push(dir);
      const t = performance.now();
      const sampler = new RssSampler(undefined, () => [...readPid(join(dir, 'postmaster.pid'))]);
      try {
        await pgCtlStart(pg.bin, dir, who, { logFile });
        await waitPromoted(logFile);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : ''}`);
      }
      return { code: 0, seconds: (performance.now() - t) / 1000, cpu: NaN, stdout: '', stderr: '', peaks: sampler.stop() };
    };
    const phases = (logFile: string) => logPhases(readFileSync(logFile, 'utf8'))!;
    const finish = async (dir: string) => {
      await pgCtlStop(pg.bin, dir, who, 'immediate').catch(() => undefined);
      await stopWalDaemon(dir).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    };
    const merge = (a: Map<string, number>, b: Map<string, number>) => new Map([...a, ...[...b].filter(([k, v]) => v > (a.get(k) ?? 0))]);
    // The store's processes: s3rver, and the shaping proxy under --wan (on a real cloud their CPU is elsewhere).
    const storePids = [s3.pid, ...pidsMatching(/PGARK_WAN_PROXY|harness\/proxy\.js/)];
    const machine = new MachineCpu(storePids);
    for (let i = 0; i < REPEAT; i++) {
      for (const build of TOOLS.includes('pgark') ? buildsInTurn(i) : []) {
        const dir = target(`${build.label}-recovery`);
        const port = await freePort();
        const t = Date.now();
        const storeCpu0 = cpuSeconds(s3.pid);
        const r = mustSucceed(`${build.label} restore --start`, await pgarkRestore(dir, ['--start', '--pghost', '127.0.0.1', '--pgport', String(port)], build.js));
        const storeCpu = cpuSeconds(s3.pid) - storeCpu0;
        const out = JSON.parse(r.stdout);
        const serverLog = readFileSync(out.server.logFile, 'utf8');
        const p = logPhases(serverLog)!;
        const calls = (re: RegExp) => serverLog.split('\n').filter((l) => re.test(l)).length;
        if (process.env.BENCH_PGARK_LOG_LEVEL === 'debug') {
          console.log(`${build.label}: restore_command answered by sh ${calls(/by sh without Node/)} times, through Node ${calls(/through Node in/)} times; recovery_end_command once`);
          const shown = /pgark wal-restore: |starting PostgreSQL|was interrupted|starting (point-in-time|archive) recovery|redo (starts|done)|selected new timeline|ready to accept/;
          for (const line of serverLog.split('\n')) if (shown.test(line)) console.log(`  ${line}`);
          for (const line of r.stderr.split('\n')) if (/^\[[\d:.]+\] /.test(line)) console.log(`  ${line}`);
          // The daemon's own timings (lookup, transfer, check) of each WAL file it fetched.
          const daemonLog = join(dir, 'pgark-wal', 'daemon.log');
          // The bound on fetching: CPU per segment of the daemon (GET, TLS, decode, write) and of the store.
          const daemon = Number(readFileSync(join(dir, 'pgark-wal', 'daemon.lock'), 'utf8').trim());
          const daemonLines = existsSync(daemonLog) ? readFileSync(daemonLog, 'utf8').split('\n') : [];
          const fetched = daemonLines.filter((l) => l.includes('WAL file fetched')).length;
          const daemonCpu = daemon > 0 ? cpuSeconds(daemon) : NaN;
          console.log(`  CPU: WAL daemon ${daemonCpu.toFixed(2)} s, store ${storeCpu.toFixed(2)} s (data step included) for ${fetched} WAL files fetched; startup process (replay) ${p.replayCpu?.toFixed(2) ?? '?'} s; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
          for (const line of daemonLines) {
            // Anything not JSON is Node's own output (a stack, a warning): shown as it is.
            if (line && !line.startsWith('{')) {
              console.log(`  daemon (not JSON): ${line}`);
              continue;
            }
            const e = JSON.parse(line || '{}') as { time: number; level: number; msg: string; wal: string; lookupMs: number; transferMs: number; checkMs: number };
            if (e.level >= 40) console.log(`  daemon ${new Date(e.time).toISOString().slice(11, 23)} ${e.msg}: ${line}`);
            if (!line.includes('WAL file fetched')) continue;
            console.log(`  daemon ${new Date(e.time).toISOString().slice(11, 23)} fetched ${e.wal}: lookup ${e.lookupMs} ms, transfer ${e.transferMs} ms, check ${e.checkMs} ms`);
          }
        }
        recoveryRows.push({ what: `${build.label} ${CODECS.at(-1)}`, data: p.startedAt - t / 1000, ...p, total: p.readyAt - t / 1000, peaks: r.peaks });
        await finish(dir);
      }
      if (TOOLS.includes('pgbackrest')) {
        const dir = serverDir('pgbackrest-recovery');
        const t = Date.now();
        const r = mustSucceed('pgbackrest restore', await measured('pgbackrest', [`--config=${pbrConf}`, '--stanza=bench', `--pg1-path=${dir}`, 'restore'], { uid: who?.uid, gid: who?.gid }));
        const s = await startAndWait(dir, { restore_command: `pgbackrest --config=${pbrConf} --stanza=bench --pg1-path=${dir} archive-get %f "%p"` });
        const p = phases(join(dir, 'bench-server.log'));
        recoveryRows.push({ what: 'pgbackrest zst', data: p.startedAt - t / 1000, ...p, total: p.readyAt - t / 1000, peaks: merge(r.peaks, s.peaks) });
        await finish(dir);
      }
      if (TOOLS.includes('barman')) {
        const dir = serverDir('barman-recovery');
        const t = Date.now();
        const r = mustSucceed('barman-cloud-restore', await measured('barman-cloud-restore', [...b.args, barmanStore.destinationPath, 'bench', barmanBackup, dir], { env: b.env, uid: who?.uid, gid: who?.gid }));
        const s = await startAndWait(dir, { restore_command: `env ${barmanVars.join(' ')} barman-cloud-wal-restore ${b.args.join(' ')} ${barmanStore.destinationPath} bench %f %p` });
        const p = phases(join(dir, 'bench-server.log'));
        recoveryRows.push({ what: `barman ${BARMAN_CODEC}`, data: p.startedAt - t / 1000, ...p, total: p.readyAt - t / 1000, peaks: merge(r.peaks, s.peaks) });
        await finish(dir);
      }
      if (TOOLS.includes('local')) {
        // pgark's data directory, WAL from local disk: what replay alone costs here.
        const dir = target('local-recovery');
        const t = Date.now();
        const storeCpu0 = cpuSeconds(s3.pid);
        const r = mustSucceed('pgark restore', await pgarkRestore(dir));
        if (process.env.BENCH_PGARK_LOG_LEVEL === 'debug') console.log(`local: store CPU of the data step alone ${(cpuSeconds(s3.pid) - storeCpu0).toFixed(2)} s`);
        rmSync(join(dir, 'postgresql.auto.conf'));
        const s = await startAndWait(dir, { restore_command: `cp ${localWal}/%f %p` });
        const p = phases(join(dir, 'bench-server.log'));
        recoveryRows.push({ what: 'local cp (limit)', data: p.startedAt - t / 1000, ...p, total: p.readyAt - t / 1000, peaks: merge(r.peaks, s.peaks) });
        await finish(dir);
      }
    }
    machine.stop();
    for (const row of recoveryRows) {
      if (row.redoAt === undefined || row.doneAt === undefined) continue;
      const busy = machine.busyBetween(row.redoAt, row.doneAt);
      row.replayBusy = busy.machine;
      row.replayStoreBusy = busy.watched;
    }
    printRows(recoveryRows, 'recovery to a promoted server (s)');
    printRatios(recoveryRows);
  } finally {
    await cleanup();
  }
}

/** GETs every object of a pgark backup, JOBS at a time, dropping the bytes: the store's read ceiling. */
async function storeCeiling(resolved: ReturnType<Awaited<ReturnType<typeof startStore>>['resolved']>, backupId: string): Promise<{ seconds: number; bytes: number }> {
  const store = await openObjectStore(resolved);
  try {
    const keys: string[] = [];
    for await (const e of store.list(`bench/base/${backupId}/`)) if (e.object && !e.object.key.endsWith('backup.info')) keys.push(e.object.key);
    let bytes = 0;
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: JOBS }, async () => {
        while (next < keys.length) {
          const body = await store.get(keys[next++]);
          for await (const chunk of body) bytes += (chunk as Buffer).length;
        }
      }),
    );
    return { seconds: (performance.now() - t) / 1000, bytes };
  } finally {
    await store.close();
  }
}

/** The native command that decodes a pgark backup object of a codec onto stdout, if there is one here. */
const NATIVE_DECODER: Record<string, string | undefined> = { none: 'cat', gzip: 'gzip -dc', zstd: 'zstd -dc', lz4: 'lz4 -dc' };

/**
 * The floor of a data step whose bytes are already here: the same pgark objects, copied to local disk
 * once (not timed), laid down by the system's own decoder piped into GNU tar, JOBS objects at a time,
 * then the file system synced (pgark fsyncs what it restores); the best of REPEAT. No store, no
 * checks, no manifest: what decoding and writing these files costs on this machine.
 */
async function extractionFloor(resolved: ReturnType<Awaited<ReturnType<typeof startStore>>['resolved']>, backupId: string, codec: string, workDir: string): Promise<{ extract: number; sync: number } | undefined> {
  const decoder = NATIVE_DECODER[codec];
  if (!decoder) return undefined;
  const objects = join(workDir, 'floor-objects');
  const dir = join(workDir, 'floor-extracted');
  rmSync(objects, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(objects);
  const store = await openObjectStore(resolved);
  const files: string[] = [];
  try {
    for await (const e of store.list(`bench/base/${backupId}/`)) {
      // The tar archives only: backup.info and pgark's own file index are read, not laid down.
      if (!e.object || !/^(data(_\d+)?|\d+)\.tar(\.[a-z0-9]+)?$/.test(basename(e.object.key))) continue;
      const file = join(objects, basename(e.object.key));
      await pipeline(await store.get(e.object.key), createWriteStream(file));
      files.push(file);
    }
  } finally {
    await store.close();
  }
  const run = (command: string) =>
    new Promise<void>((resolvePromise, reject) =>
      execFile('sh', ['-c', command], (err, _out, stderr) => (err ? reject(new Error(`${command}: ${stderr || err.message}`)) : resolvePromise())),
    );
  let best: { extract: number; sync: number } | undefined;
  for (let i = 0; i < REPEAT; i++) {
    mkdirSync(dir);
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: JOBS }, async () => {
        while (next < files.length) {
          const file = files[next++];
          // data.tar holds the data directory; <oid>.tar a tablespace, laid down beside it as pgark would.
          const into = basename(file).startsWith('data') ? dir : join(dir, basename(file).split('.')[0]);
          mkdirSync(into, { recursive: true });
          await run(`${decoder} < '${file}' | tar -x -C '${into}'`);
        }
      }),
    );
    const extracted = performance.now();
    await run(`sync -f '${dir}'`);
    const timing = { extract: (extracted - t) / 1000, sync: (performance.now() - extracted) / 1000 };
    if (!best || timing.extract + timing.sync < best.extract + best.sync) best = timing;
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(objects, { recursive: true, force: true });
  return best;
}

function printRows(rows: Row[], title: string): void {
  console.log(`\n${title}; peak RSS in MiB by process (VmHWM)`);
  const withReplayCpu = rows.some((r) => r.replayBusy !== undefined);
  // redo-cpu: the startup process's own CPU s during replay; busy: the machine's (every process, every core).
  // store: the part of busy that the test store's processes (s3rver, the shaping proxy) used.
  console.log(`run                  data    cpu   start  replay  promo   total${withReplayCpu ? ' redo-cpu  busy  store' : ''}`);
  for (const r of rows) {
    const replayCpu = withReplayCpu ? ` ${fmt(r.replayCpu)}  ${fmt(r.replayBusy)} ${fmt(r.replayStoreBusy)}` : '';
    console.log(`${r.what.padEnd(18)} ${fmt(r.data)} ${fmt(r.cpu)}  ${fmt(r.start)}  ${fmt(r.replay)} ${fmt(r.promotion)}  ${fmt(r.total)}${replayCpu}   ${peaksText(r.peaks)}`);
  }
}

function best(rows: Row[], prefix: string): Row | undefined {
  return rows.filter((r) => r.what.startsWith(prefix)).sort((a, b) => a.total - b.total)[0];
}

function printRatios(rows: Row[]): void {
  const p = best(rows, 'pgark');
  if (!p) return;
  const spread = (prefix: string) => {
    const t = rows.filter((r) => r.what.startsWith(prefix)).map((r) => r.total);
    return t.length > 1 ? ` (spread ${Math.min(...t).toFixed(1)}-${Math.max(...t).toFixed(1)})` : '';
  };
  console.log(`\nbest of ${REPEAT}: pgark ${p.total.toFixed(1)} s${spread('pgark')}`);
  for (const other of ['before', 'pgbackrest', 'barman']) {
    const o = best(rows, other);
    if (o) console.log(`  ${other}: ${o.total.toFixed(1)} s${spread(other)}, pgark is ${(o.total / p.total).toFixed(2)}x faster (data ${(o.data! / p.data!).toFixed(2)}x, replay ${(o.replay! / p.replay!).toFixed(2)}x)`);
  }
  const l = best(rows, 'local');
  if (l) console.log(`  replay from local disk: ${l.replay!.toFixed(1)} s; pgark's replay takes ${(p.replay! / l.replay!).toFixed(2)}x that`);
  // Replay is one process on one core; fetching, decoding and serving the WAL (and everything else
  // running) share the machine's cores with it. With B busy CPU seconds in the window and the startup
  // process's own S, no schedule finishes sooner than max(S, B / cores): the bound this machine sets.
  const cores = availableParallelism();
  for (const r of [p, l]) {
    if (!r || r.replayBusy === undefined || r.replayCpu === undefined) continue;
    const bound = Math.max(r.replayCpu, r.replayBusy / cores);
    // With the store's CPU elsewhere, as on a real cloud: the same bound without it.
    const withoutStore = Math.max(r.replayCpu, (r.replayBusy - (r.replayStoreBusy ?? 0)) / cores);
    console.log(`  ${r.what} replay: ${r.replay!.toFixed(2)} s, startup process ${r.replayCpu.toFixed(2)} CPU s, machine ${r.replayBusy.toFixed(2)} CPU s (${((100 * r.replayBusy) / (cores * r.replay!)).toFixed(0)} % of ${cores} cores, the store ${(r.replayStoreBusy ?? 0).toFixed(2)} of them); CPU bound max(S, B/${cores}) = ${bound.toFixed(2)} s, replay is ${(r.replay! / bound).toFixed(2)}x it (without the store's CPU: bound ${withoutStore.toFixed(2)} s)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
