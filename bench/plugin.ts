/**
 * CNPG-I plugin benchmark: pgark's sidecars driven as CloudNativePG drives them, against
 * plugin-barman-cloud's way of doing the same work with barman-cloud 3.4, in one run, on one
 * plain-http s3rver, with the sidecars' peak memory (the whole process tree, as a container's
 * cgroup counts it).
 *
 *   npm run bench:plugin                                   # 100 segments, pgbench scale 50 + 350 MB text (~1.1 GB)
 *   node dist/bench/plugin.js --segments 40 --scale 5 --text-mb 30      # a quick run
 *   [--barman-segments 40] [--max-parallel 4] [--wal-compression none|gzip] [--compression gzip] [--jobs 2]
 *   [--clients spawn,persistent] [--phases wal,backup,restore] [--restore-budget 213Mi] [--wal-log /tmp/drain]
 *   BENCH_INSTANCE_NODE_ARGS="--import=/tmp/profile.mjs"  # added to the instance sidecar's NODE_OPTIONS (NODE_OPTIONS refuses --cpu-prof)
 *
 * WAL: a backlog of ready segments (bench/wal-backlog.ts) drained the way PostgreSQL calls
 * archive_command, one call at a time, in order:
 *   - pgark: one WAL.Archive call per segment to the instance sidecar (`pgark plugin serve --role
 *     instance`). CNPG's caller is `/controller/manager wal-archive`, a Go binary started per
 *     segment; it cannot run here, so two clients bound its cost: `spawn` starts a tiny client
 *     (bench/wal-archive-call.ts: node:http2 and a hand-encoded request, no gRPC library) per
 *     segment through /bin/sh as PostgreSQL does, which still costs a bare Node start (40-60 ms
 *     idle, more under load) against a Go binary's few milliseconds; `persistent` makes the calls
 *     from one long-lived client, which costs less. The Go binary's real cost lies between the
 *     two, nearer `persistent`.
 *   - plugin-barman-cloud: its Archive as CNPG documents it (reference/cnpg-barman-cloud.md 2.2):
 *     a segment found in the spool returns at once; otherwise the requested segment plus up to
 *     maxParallel-1 other .ready ones, one barman-cloud-wal-archive process each, all at once,
 *     the extra ones then spooled. Its per-call client is not counted at all (in its favour).
 * Backup: Backup.Backup on the instance sidecar against barman-cloud-backup (-J jobs), same codec.
 * Restore: RestoreJobHooks.Restore on a restore sidecar against barman-cloud-restore, each of the
 * backup its own tool took.
 *
 * The sidecars get the operator's NODE_OPTIONS and the memory budget a pod would give them (in a
 * pod it is read from the cgroup): 128Mi for the instance (--budget), and for the restore sidecar
 * two thirds of its container's default 320Mi limit (--restore-budget), as config/memory.ts computes it.
 * The restore sidecar under 128Mi ran a full collection about five times a second.
 * Restore CPU seconds: the sidecar's and s3rver's, from /proc; barman-cloud-restore's (its whole
 * process tree) from this process's reaped children.
 *
 * Memory: the sidecar's process tree is sampled every 50 ms (VmRSS of every process in it,
 * summed), and the main process's VmHWM is reset at the start of each phase (/proc/PID/clear_refs
 * 5, which needs root) and read at its end; a phase's peak is the larger of the two.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { clusterJson, pluginCluster, WAL } from '../test/harness/cnpg-client.js';
import { startS3rver } from '../test/harness/s3rver.js';
import { startStore, type TestStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { serverIdentity } from '../src/pg/local-server.js';
import { writeStoreManifests } from '../test/plugin/helpers.js';
import { PLUGIN_NAME, startPluginArchivedServer, startSidecar, writeClusterFiles, type Sidecar } from '../test/plugin/sidecar-process.js';
import { parseQuantity, SIDECAR_ENV as INJECTED_ENV } from '../src/config/memory.js';
import { DEFAULT_SIDECAR_RESOURCES } from '../src/plugin/operator/lifecycle-patch.js';
import { loadBenchData, timed, waitArchiverIdle } from './database.js';
import { childrenCpuSeconds, cpuSeconds, numberOption, option, procStatusKiB, storedBytes, wanConditions, wanOption } from './util.js';
import { commandArchiver, produceBacklog, run, timedDrain, toolDataDir, type ArchiveCommand, type Backlog } from './wal-backlog.js';

const SEGMENTS = numberOption('segments', 100);
const BARMAN_SEGMENTS = Math.min(SEGMENTS, numberOption('barman-segments', 40));
const MAX_PARALLEL = numberOption('max-parallel', 4);
const SCALE = numberOption('scale', 50);
const TEXT_MB = numberOption('text-mb', 350);
const WAL_COMPRESSION = option('wal-compression') ?? 'none';
const COMPRESSION = option('compression') ?? 'gzip';
const JOBS = numberOption('jobs', 2);
/** Writes the instance sidecar's log of each pgark drain to FILE-<client> (its debug lines are the drain's timeline). */
const WAL_LOG = option('wal-log');
/** The per-segment caller of the `spawn` client (compiled beside this file). */
const ARCHIVE_CALL = new URL('./wal-archive-call.js', import.meta.url).pathname;
const CLIENTS = (option('clients') ?? 'spawn,persistent').split(',');
for (const c of CLIENTS) if (c !== 'spawn' && c !== 'persistent') throw new Error(`--clients takes spawn,persistent, not "${c}"`);
const PHASES = (option('phases') ?? 'wal,backup,restore').split(',');
for (const p of PHASES) if (!['wal', 'backup', 'restore'].includes(p)) throw new Error(`--phases takes wal,backup,restore, not "${p}"`);
if (PHASES.includes('restore') && !PHASES.includes('backup')) throw new Error('--phases: restore needs backup (it restores that backup)');
if (!['none', 'gzip'].includes(WAL_COMPRESSION)) throw new Error('--wal-compression is none or gzip (what barman-cloud 3.4 and pgark both have)');

const MiB = 1024 * 1024;
const INSTANCE_BAR = 128 * MiB;
const RESTORE_BAR = 256 * MiB;
/** The sidecars run as the operator injects them (its NODE_OPTIONS and malloc setting), with the issue's 128Mi bar as their budget (--budget to change it). */
// The sidecars log at the operator's default level (info); the test harness's debug level would
// bill pgark for about five log lines per segment. --wal-log needs the debug timeline.
const SIDECAR_ENV = { ...INJECTED_ENV, PGARK_MEMORY_BUDGET: option('budget') ?? '128Mi', PGARK_LOG_LEVEL: WAL_LOG ? 'debug' : 'info' };
const RESTORE_BUDGET = option('restore-budget') ?? `${Math.floor((parseQuantity(String(DEFAULT_SIDECAR_RESOURCES.restore.limits!.memory), 'restore limit') * 2) / 3 / MiB)}Mi`;
/** BENCH_RESTORE_NODE_ARGS adds Node options to the restore sidecar's NODE_OPTIONS, e.g. "--import=/tmp/preload.mjs" to instrument its Restore (NODE_OPTIONS refuses --cpu-prof). */
const RESTORE_PROFILE: Record<string, string> = process.env.BENCH_RESTORE_NODE_ARGS ? { NODE_OPTIONS: `${INJECTED_ENV.NODE_OPTIONS} ${process.env.BENCH_RESTORE_NODE_ARGS}` } : {};
/** BENCH_INSTANCE_NODE_ARGS does the same for the instance sidecar (its WAL.Archive and Backup). */
const INSTANCE_PROFILE: Record<string, string> = process.env.BENCH_INSTANCE_NODE_ARGS ? { NODE_OPTIONS: `${INJECTED_ENV.NODE_OPTIONS} ${process.env.BENCH_INSTANCE_NODE_ARGS}` } : {};
const BACKUP = 'cnpgi.backup.v1.Backup';
const RESTORE_JOB = 'cnpgi.wal.v1.RestoreJobHooks';

/** Every process in the tree under pid (pid first), from /proc/PID/task/TID/children. */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(' ').filter(Boolean)) out.push(Number(c));
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return out;
}

/** Peak memory of a process tree during one phase. */
class TreeMemory {
  private peakTree = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: number) {}

  start(): void {
    this.peakTree = 0;
    writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
    this.timer = setInterval(() => this.sample(), 50);
  }

  private sample(): void {
    const kib = processTree(this.pid).reduce((n, p) => n + procStatusKiB(p, 'VmRSS'), 0);
    this.peakTree = Math.max(this.peakTree, kib * 1024);
  }

  /** Ends the phase: its peak in bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return Math.max(this.peakTree, procStatusKiB(this.pid, 'VmHWM') * 1024);
  }
}

interface Row {
  what: string;
  pgark: number;
  barman: number;
  unit: 'segments/s' | 's';
  pgarkPeak: number;
  bar: number;
  speedBar: number;
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

/** plugin-barman-cloud's WAL.Archive: spool hit, else the segment plus maxParallel-1 other .ready ones at once. */
function barmanPluginArchiver(pgdata: string, spool: string, store: TestStore, serverName: string): ArchiveCommand {
  const b = store.barman!;
  const flag = WAL_COMPRESSION === 'gzip' ? ['--gzip'] : [];
  const status = join(pgdata, 'pg_wal', 'archive_status');
  mkdirSync(spool, { recursive: true });
  return async (walPath) => {
    const name = walPath.slice('pg_wal/'.length);
    if (existsSync(join(spool, name))) {
      unlinkSync(join(spool, name));
      return { code: 0, stderr: '' };
    }
    const others = readdirSync(status)
      .filter((f) => f.endsWith('.ready') && f !== `${name}.ready`)
      .sort()
      .slice(0, MAX_PARALLEL - 1)
      .map((f) => f.slice(0, -'.ready'.length));
    const results = await Promise.all(
      [name, ...others].map((n) => run('barman-cloud-wal-archive', [...b.args, ...flag, store.destinationPath, serverName, join(pgdata, 'pg_wal', n)], b.env)),
    );
    others.forEach((n, i) => results[i + 1].code === 0 && writeFileSync(join(spool, n), ''));
    return results[0];
  };
}

/** One WAL.Archive per segment from a client that stays connected (the cheap end of the Go caller's cost). */
function persistentArchiver(sidecar: Sidecar, pgdata: string, cluster: object, parameters: Record<string, string>): ArchiveCommand {
  const clusterDefinition = clusterJson(cluster);
  return async (walPath) => {
    try {
      await sidecar.client.call(WAL, 'Archive', { clusterDefinition, sourceFileName: join(pgdata, walPath), parameters, checkEmptyWalArchive: false });
      return { code: 0, stderr: '' };
    } catch (err) {
      return { code: 1, stderr: String((err as { details?: string }).details ?? err) };
    }
  };
}

/**
 * CPU seconds per segment of a drain, the steadier figure on a shared machine: the calls (this
 * process's children, e.g. spawned clients and barman-cloud's processes, plus this process itself,
 * where the persistent client runs), the sidecar, s3rver; with the load average at the start.
 */
function cpuMeter(storePid: number, sidecarPid?: number): { perSegment(segments: number): string } {
  const self = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const calls = () => childrenCpuSeconds() + self();
  const load = loadavg()[0];
  const [calls0, sidecar0, store0] = [calls(), sidecarPid ? cpuSeconds(sidecarPid) : 0, cpuSeconds(storePid)];
  return {
    perSegment: (n) => {
      const c = (calls() - calls0) / n;
      const sc = sidecarPid ? (cpuSeconds(sidecarPid) - sidecar0) / n : 0;
      const st = (cpuSeconds(storePid) - store0) / n;
      return `cpu s/segment: calls ${c.toFixed(3)} + sidecar ${sc.toFixed(3)} + s3rver ${st.toFixed(3)} = ${(c + sc + st).toFixed(3)} (load ${load.toFixed(1)})`;
    },
  };
}

async function walPhase(o: { work: string; backlog: Backlog; sidecar: Sidecar; memory: TreeMemory; pgarkStore: TestStore; barmanStore: TestStore }): Promise<Row[]> {
  const who = serverIdentity();
  const s3 = o.pgarkStore.s3rver!;
  const rows: Row[] = [];
  const barmanPgdata = toolDataDir(join(o.work, 'wal-barman'), o.backlog.pgdata, o.backlog.segments.slice(0, BARMAN_SEGMENTS));
  const barmanCpu = cpuMeter(s3.pid);
  const barman = await timedDrain(s3, barmanPgdata, o.backlog.segments.slice(0, BARMAN_SEGMENTS), barmanPluginArchiver(barmanPgdata, join(o.work, 'wal-barman', 'spool'), o.barmanStore, 'backlog'));
  const barmanRate = BARMAN_SEGMENTS / barman.seconds;
  console.log(`WAL  plugin-barman-cloud model: ${BARMAN_SEGMENTS} segments in ${barman.seconds.toFixed(1)} s = ${barmanRate.toFixed(2)} segments/s (store CPU ${(barman.storeBusy * 100).toFixed(0)} %), ${barmanCpu.perSegment(BARMAN_SEGMENTS)}`);
  for (const client of CLIENTS) {
    const serverName = `backlog-${client}`;
    const dir = join(o.work, `wal-${client}`);
    const pgdata = toolDataDir(dir, o.backlog.pgdata, o.backlog.segments);
    // The sidecar runs as PostgreSQL's user, as it shares the postgres container's uid.
    if (who) execFileSync('chown', ['-R', `${who.uid}:${who.gid}`, dir]);
    const parameters = { barmanObjectName: 'store', serverName };
    const cluster = pluginCluster({ name: 'backlog', pluginName: PLUGIN_NAME, barmanObjectName: 'store', serverName });
    const files = writeClusterFiles(dir, cluster, parameters);
    const archive =
      client === 'spawn'
        ? commandArchiver(pgdata, (p) => ['/bin/sh', ['-c', `${process.execPath} ${ARCHIVE_CALL} ${o.sidecar.socket} ${files.clusterFile} ${files.paramsFile} ${p}`]], {})
        : persistentArchiver(o.sidecar, pgdata, cluster, parameters);
    o.memory.start();
    const meter = cpuMeter(s3.pid, o.sidecar.pid);
    const logFrom = o.sidecar.log().length;
    const r = await timedDrain(s3, pgdata, o.backlog.segments, archive);
    const peak = o.memory.stop();
    if (WAL_LOG) writeFileSync(`${WAL_LOG}-${client}`, o.sidecar.log().slice(logFrom));
    const rate = o.backlog.segments.length / r.seconds;
    console.log(
      `WAL  pgark (${client} client): ${o.backlog.segments.length} segments in ${r.seconds.toFixed(1)} s = ${rate.toFixed(2)} segments/s (store CPU ${(r.storeBusy * 100).toFixed(0)} %), sidecar peak ${mib(peak)}, ${meter.perSegment(o.backlog.segments.length)}`,
    );
    rows.push({ what: `WAL archive, ${client} client`, pgark: rate, barman: barmanRate, unit: 'segments/s', pgarkPeak: peak, bar: INSTANCE_BAR, speedBar: 8 });
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function printTable(rows: Row[]): void {
  console.log(`\nCNPG-I plugin benchmark, ${new Date().toISOString()}: maxParallel ${MAX_PARALLEL}, WAL compression ${WAL_COMPRESSION}, data ${COMPRESSION}, jobs ${JOBS}, s3rver (http)`);
  console.log('phase                           pgark        plugin-barman-cloud   speed-up (bar)   pgark sidecar peak (bar)');
  for (const r of rows) {
    const speedup = r.unit === 's' ? r.barman / r.pgark : r.pgark / r.barman;
    const fmt = (n: number) => (r.unit === 's' ? `${n.toFixed(1)} s` : `${n.toFixed(2)} seg/s`);
    console.log(
      `${r.what.padEnd(31)} ${fmt(r.pgark).padEnd(12)} ${fmt(r.barman).padEnd(21)} ${`${speedup.toFixed(1)}x (${r.speedBar}x ${speedup >= r.speedBar ? 'met' : 'NOT met'})`.padEnd(16)} ${mib(r.pgarkPeak)} (< ${mib(r.bar)} ${r.pgarkPeak < r.bar ? 'met' : 'NOT met'})`,
    );
  }
}

async function main(): Promise<void> {
  const work = scratchDir('bench-plugin');
  const s3 = await startS3rver({ tls: false, front: false, wan: wanOption() });
  console.log(wanConditions(wanOption()));
  const pgarkStore = await startStore('s3', { s3rver: s3, prefix: 'pgark' });
  const barmanStore = await startStore('s3', { s3rver: s3, prefix: 'barman' });
  const configuration = { wal: { maxParallel: MAX_PARALLEL, ...(WAL_COMPRESSION === 'none' ? {} : { compression: WAL_COMPRESSION }) }, data: { compression: COMPRESSION, jobs: JOBS } };
  const manifests = writeStoreManifests(work.path, pgarkStore, 'store', { configuration });
  const cluster = pluginCluster({ name: 'bench', pluginName: PLUGIN_NAME, barmanObjectName: 'store' });
  const server = await startPluginArchivedServer({ dir: work.path, manifests: [manifests], cluster, parameters: { barmanObjectName: 'store' }, env: { ...SIDECAR_ENV, ...INSTANCE_PROFILE } });
  const { pg, sidecar } = server;
  let backlog: Backlog | undefined;
  let restoreSidecar: Sidecar | undefined;
  const cleanup = async () => {
    await restoreSidecar?.stop();
    await sidecar.stop();
    await backlog?.cleanup();
    await pg.destroy();
    await s3.stop();
    work.cleanup();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  const rows: Row[] = [];
  try {
    const memory = new TreeMemory(sidecar.pid);
    const b = barmanStore.barman!;
    if (PHASES.includes('wal')) {
      process.stderr.write(`producing ${SEGMENTS} ready segments with PostgreSQL 15...\n`);
      backlog = await produceBacklog(SEGMENTS);
      rows.push(...(await walPhase({ work: work.path, backlog, sidecar, memory, pgarkStore, barmanStore })));
    }

    if (PHASES.includes('backup')) {
      const t0 = Date.now();
      memory.start();
      await loadBenchData(pg, SCALE, TEXT_MB);
      await waitArchiverIdle(pg);
      const loadPeak = memory.stop();
      const dbBytes = Number((await pg.query<{ s: string }>('SELECT sum(pg_database_size(oid))::text AS s FROM pg_database'))[0].s);
      console.log(`database: ${(dbBytes / 1e6).toFixed(0)} MB, loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s while the sidecar archived its WAL (spawned client per segment), sidecar peak ${mib(loadPeak)}`);

      const backupDefinition = Buffer.from(JSON.stringify({ metadata: { name: 'bench-base' }, spec: { method: 'plugin', cluster: { name: 'bench' }, onlineConfiguration: { immediateCheckpoint: true } } }));
      const treeCpu = () => processTree(sidecar.pid).reduce((n, p) => n + cpuSeconds(p), 0);
      memory.start();
      const [cpu0, store0] = [treeCpu(), cpuSeconds(s3.pid)];
      const b0 = performance.now();
      const result = await sidecar.client.call(BACKUP, 'Backup', { clusterDefinition: clusterJson(cluster), backupDefinition, parameters: {} });
      const pgarkBackup = (performance.now() - b0) / 1000;
      const [pgarkCpu, pgarkStoreCpu] = [treeCpu() - cpu0, cpuSeconds(s3.pid) - store0];
      const backupPeak = memory.stop();
      const codec = COMPRESSION === 'none' ? [] : [`--${COMPRESSION}`];
      const barmanStore0 = cpuSeconds(s3.pid);
      // The inner GNU time sums the CPU of barman-cloud-backup and every worker process it waited for.
      const barmanBackup = await timed('/usr/bin/time', ['-f', 'CPU_S=%U+%S', 'barman-cloud-backup', ...b.args, ...codec, '--immediate-checkpoint', '-J', String(JOBS), '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', barmanStore.destinationPath, 'bench'], b.env);
      if (barmanBackup.code !== 0) throw new Error(`barman-cloud-backup: ${barmanBackup.stderr}`);
      const barmanCpu = (/CPU_S=([\d.]+)\+([\d.]+)/.exec(barmanBackup.stderr) ?? []).slice(1).reduce((n, v) => n + Number(v), 0);
      const barmanStoreCpu = cpuSeconds(s3.pid) - barmanStore0;
      console.log(`backup  pgark ${pgarkBackup.toFixed(1)} s (sidecar peak ${mib(backupPeak)}, stored ${(Number(result.metadata['pgark:stored-bytes']) / 1e6).toFixed(0)} MB); barman-cloud-backup ${barmanBackup.seconds.toFixed(1)} s (peak ${(barmanBackup.rssKb / 1024).toFixed(0)} MiB, stored ${(storedBytes(s3, 'barman/bench/base') / 1e6).toFixed(0)} MB)`);
      console.log(`backup  CPU seconds: pgark sidecar ${pgarkCpu.toFixed(1)} + s3rver ${pgarkStoreCpu.toFixed(1)}; barman-cloud-backup ${barmanCpu.toFixed(1)} + s3rver ${barmanStoreCpu.toFixed(1)}; ratio ${((barmanCpu + barmanStoreCpu) / (pgarkCpu + pgarkStoreCpu)).toFixed(2)}x; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      rows.push({ what: `backup (${COMPRESSION}, jobs ${JOBS})`, pgark: pgarkBackup, barman: barmanBackup.seconds, unit: 's', pgarkPeak: Math.max(backupPeak, loadPeak), bar: INSTANCE_BAR, speedBar: 3 });
    }
    if (PHASES.includes('restore')) {
      const restoreDir = join(work.path, 'restore-job');
      const target = join(restoreDir, 'pgdata');
      restoreSidecar = await startSidecar({ role: 'restore', dir: restoreDir, files: [manifests], env: { PGDATA: target, ...SIDECAR_ENV, PGARK_MEMORY_BUDGET: RESTORE_BUDGET, ...RESTORE_PROFILE } });
      const restoreMemory = new TreeMemory(restoreSidecar.pid);
      const recovering = pluginCluster({
        name: 'restored',
        pluginName: PLUGIN_NAME,
        barmanObjectName: 'store',
        serverName: 'restored',
        // The restore sidecar runs no server: the Cluster's image says which major the Job's postgres container runs.
        spec: { imageName: 'ghcr.io/cloudnative-pg/postgresql:15.8', bootstrap: { recovery: { source: 'origin' } }, externalClusters: [{ name: 'origin', plugin: { name: PLUGIN_NAME, parameters: { barmanObjectName: 'store', serverName: 'bench' } } }] },
      });
      restoreMemory.start();
      const cpu0 = cpuSeconds(restoreSidecar.pid) + cpuSeconds(s3.pid);
      const r0 = performance.now();
      await restoreSidecar.client.call(RESTORE_JOB, 'Restore', { clusterDefinition: clusterJson(recovering), checkEmptyWalArchive: true });
      const pgarkRestore = (performance.now() - r0) / 1000;
      const pgarkRestoreCpu = cpuSeconds(restoreSidecar.pid) + cpuSeconds(s3.pid) - cpu0;
      const restorePeak = restoreMemory.stop();
      await restoreSidecar.stop();
      restoreSidecar = undefined;
      rmSync(restoreDir, { recursive: true, force: true });
      const listed = execFileSync('barman-cloud-backup-list', [...b.args, '--format', 'json', barmanStore.destinationPath, 'bench'], { env: { ...process.env, ...b.env } });
      const barmanId = (JSON.parse(listed.toString()) as { backups_list: { backup_id: string }[] }).backups_list[0]?.backup_id;
      if (!barmanId) throw new Error('barman-cloud-backup-list found no backup');
      const barmanTarget = join(work.path, 'barman-restore');
      const barmanCpu0 = childrenCpuSeconds() + cpuSeconds(s3.pid);
      const barmanRestore = await timed('barman-cloud-restore', [...b.args, barmanStore.destinationPath, 'bench', barmanId, barmanTarget], b.env);
      const barmanRestoreCpu = childrenCpuSeconds() + cpuSeconds(s3.pid) - barmanCpu0;
      if (barmanRestore.code !== 0) throw new Error(`barman-cloud-restore: ${barmanRestore.stderr}`);
      rmSync(barmanTarget, { recursive: true, force: true });
      console.log(`restore pgark ${pgarkRestore.toFixed(1)} s (restore sidecar peak ${mib(restorePeak)}, budget ${RESTORE_BUDGET}); barman-cloud-restore ${barmanRestore.seconds.toFixed(1)} s (peak ${(barmanRestore.rssKb / 1024).toFixed(0)} MiB)`);
      console.log(`restore CPU seconds with s3rver's: pgark ${pgarkRestoreCpu.toFixed(2)}, barman-cloud-restore ${barmanRestoreCpu.toFixed(2)}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      rows.push({ what: 'restore', pgark: pgarkRestore, barman: barmanRestore.seconds, unit: 's', pgarkPeak: restorePeak, bar: RESTORE_BAR, speedBar: 3 });
    }
  } finally {
    await cleanup();
  }

  printTable(rows);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
