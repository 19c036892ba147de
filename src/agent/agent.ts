/**
 * `pgark agent`: the long-running companion of a PostgreSQL server. It runs every
 * ScheduledBackup in the manifests (scheduler.ts), one backup per cluster at a time with
 * retention after each and every --retention-interval (cluster-worker.ts), hosts the WAL fast
 * path for the data directory it is given (wal-host.ts), and serves /metrics, /healthz, /readyz
 * and /status (http.ts). Its state survives restarts (state.ts).
 *
 * Memory: the agent holds its state (at most a few hundred backup entries), one catalog listing
 * per refresh, and the WAL daemon's bound (docs/wal-archiving.md: pushes stream in 256 KiB chunks,
 * encoded segments through a spill file on disk, so wal.maxParallel costs chunks, not segments).
 * Each backup runs in its own process with the backup's own bound (docs/backups.md).
 *
 * Shutdown (SIGTERM/SIGINT): no new work; the running backup is aborted (its process ends before
 * backup.info could say DONE, and its objects are removed), WAL uploads in progress finish, the
 * HTTP server closes, exit code 0.
 */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Server } from 'node:http';
import { backupStoreSpec, clusterObjectStore, clusterStoreSpec, findCluster, loadContext } from '../config/index.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import { parseGoDuration, parseSchedule } from '../schedule/cron.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { AgentState } from './state.js';
import { AgentMetrics, archiveStatusCounts } from './metrics.js';
import { ClusterWorker } from './cluster-worker.js';
import { backupScheduleRunner, ScheduleRunner } from './scheduler.js';
import { DrillWorker } from './drill-worker.js';
import { WalHost } from './wal-host.js';
import { parseListen, startHttpServer } from './http.js';
import { isTerminal } from './phases.js';
import { readArchiverStats } from './pg-stats.js';
import { setting } from '../util/options.js';

export interface AgentOptions {
  files: string[];
  secretsDir?: string;
  pg: PgConnectionOptions;
  listen: string;
  retentionInterval: string;
  refreshInterval: string;
  stateDir?: string;
}

/** A readiness probe fails when a store has not answered for this many refresh intervals. */
const READY_MISSED_REFRESHES = 3;

function interval(text: string, option: string): number {
  let ms: number;
  try {
    ms = parseGoDuration(text) / 1e6;
  } catch (err) {
    throw new UserError(`${option}: ${(err as Error).message}`, 'a duration such as 30s, 10m or 1h');
  }
  if (!(ms >= 1000)) throw new UserError(`${option}: "${text}" is shorter than one second`, 'a duration such as 30s, 10m or 1h');
  return ms;
}

/**
 * PostgreSQL runs archive_command as the data directory's owner, and those clients use the WAL
 * socket only in a runtime directory private to their own user. An agent of another user (root,
 * typically) would leave every client archiving in its own process, about 5x slower: refused.
 */
function checkRunsAsDataDirectoryOwner(pgdata: string): void {
  const owner = statSync(pgdata, { throwIfNoEntry: false })?.uid;
  const uid = process.getuid?.();
  if (owner === undefined || uid === undefined || owner === uid) return;
  throw new UserError(
    `pgark agent runs as uid ${uid}, but the data directory ${pgdata} belongs to uid ${owner}: PostgreSQL's archive_command (uid ${owner}) could not use the agent's WAL socket and would archive each segment in a process of its own, several times slower`,
    `run the agent as PostgreSQL's OS user (uid ${owner}), e.g. runuser -u postgres -- pgark agent ...`,
  );
}

export function defaultStateDir(): string {
  return join(homedir(), '.pgark', 'agent');
}

export async function runAgent(opts: AgentOptions): Promise<void> {
  const log = logger();
  const startedAt = new Date();
  const retentionMs = interval(opts.retentionInterval, '--retention-interval');
  const refreshMs = interval(opts.refreshInterval, '--refresh-interval');
  const listen = parseListen(opts.listen);
  if (opts.files.length === 0) throw new UserError('no manifests: pass -f DIR_OR_FILE (or set PGARK_CONFIG)', 'the directory or files holding the Cluster and its ScheduledBackups');
  const files = opts.files.map((f) => resolve(f));
  const ctx = await loadContext({ files, secretsDir: opts.secretsDir });
  const pgdata = opts.pg.pgdata ?? setting('pgdata');

  // Everything the agent will do is checked before it does anything: bad input exits 2.
  const schedules = ctx.manifests.scheduledBackups.map((sb) => {
    const parsed = parseSchedule(sb.spec.schedule);
    if (parsed.warning) log.warn({ scheduledBackup: sb.metadata.name }, parsed.warning);
    const cluster = findCluster(ctx.manifests, sb.spec.cluster.name);
    const target = backupStoreSpec(ctx.manifests, cluster, sb);
    const own = clusterStoreSpec(ctx.manifests, cluster);
    // The Cluster's worker backs up into the Cluster's own store; a pluginConfiguration naming another one would be ignored.
    if (target.config !== own?.config || target.serverName !== own.serverName) {
      throw new UserError(
        `ScheduledBackup "${sb.metadata.name}": pluginConfiguration names another store than Cluster "${cluster.metadata.name}" archives to`,
        "drop pluginConfiguration.parameters, so that the backups go where the Cluster's WAL goes",
      );
    }
    return { sb, schedule: parsed.schedule };
  });
  const drillSchedules = ctx.manifests.scheduledDrills.map((sd) => {
    const parsed = parseSchedule(sd.spec.schedule);
    if (parsed.warning) log.warn({ scheduledDrill: sd.metadata.name }, parsed.warning);
    const cluster = findCluster(ctx.manifests, sd.spec.cluster.name);
    if (!cluster.spec.backup?.barmanObjectStore) {
      throw new UserError(`ScheduledDrill "${sd.metadata.name}": Cluster "${cluster.metadata.name}" has no spec.backup.barmanObjectStore to restore from`, 'add one to the Cluster, or remove the ScheduledDrill');
    }
    return { sd, schedule: parsed.schedule };
  });

  const archiverStats = () => readArchiverStats({ ...opts.pg, pgdata });
  /**
   * What CNPG checks before a backup (pg_stat_archiver), plus what the hosted WAL daemon saw:
   * archiving fails when its last failure is newer than its last success. The text says how far
   * behind archiving is, the first thing to look at when a backup waits for its WAL.
   */
  const walArchivingProblem = async (): Promise<string | undefined> => {
    let problem = walHost?.problem();
    if (!problem) {
      const s = await archiverStats().catch(() => undefined);
      if (s && s.lastFailedTime > 0 && s.lastFailedTime > s.lastArchivedTime) {
        problem = `WAL archiving is failing: archive_command last failed ${Math.round(s.secondsSinceLastFailure)} s ago and has not succeeded since (pg_stat_archiver failed_count ${s.failedCount})`;
      }
    }
    if (!problem || !pgdata) return problem;
    const lag = await archiveStatusCounts(pgdata);
    return `${problem}; ${lag.ready} segment(s) waiting, the oldest for ${Math.round(lag.oldestReadySeconds)} s`;
  };

  if (pgdata) checkRunsAsDataDirectoryOwner(resolve(pgdata));
  const state = await AgentState.open(opts.stateDir ?? defaultStateDir());

  // Signals are taken from here on. One that arrives during startup (which is bounded: settling
  // interrupted backups, first catalog reads) stops the agent as soon as startup is over, so
  // nothing started is left unclosed.
  let startupDone!: () => void;
  const started = new Promise<void>((r) => (startupDone = r));
  let signals = 0;
  let resolveRun!: () => void;
  const stopped = new Promise<void>((r) => (resolveRun = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log.error({ signal: sig }, 'second signal while stopping: exiting now');
      process.exit(1);
    }
    void started
      .then(() => stop(`received ${sig}`))
      .then(resolveRun, (err: Error) => {
        log.error({ err: err.message }, 'agent shutdown failed');
        process.exitCode = 1;
        resolveRun();
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const metrics = new AgentMetrics(pgdata, archiverStats);
  const shutdown = new AbortController();
  const walHost = pgdata ? new WalHost(resolve(pgdata), metrics) : undefined;
  const workers = new Map<string, ClusterWorker>();
  let server: Server | undefined;
  const timers: NodeJS.Timeout[] = [];
  const runners: ScheduleRunner[] = [];
  const drillRunners: ScheduleRunner[] = [];
  let drills: DrillWorker | undefined;
  let stopping: Promise<void> | undefined;
  let url = '';

  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      log.info({ reason: why }, 'agent stopping');
      for (const r of [...runners, ...drillRunners]) r.stop();
      for (const t of timers) clearInterval(t);
      shutdown.abort(why);
      for (const w of workers.values()) await w.idle();
      await drills?.idle();
      await walHost?.close();
      for (const w of workers.values()) await w.close();
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((r) => server!.close(() => r()));
      }
      await state.close();
      log.info({}, 'agent stopped');
      // Everything is closed; should a library still hold the event loop (a keep-alive socket),
      // exit anyway rather than be killed at the end of the orchestrator's grace period.
      setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
    })());

  try {
    for (const cluster of ctx.manifests.clusters) {
      if (!clusterStoreSpec(ctx.manifests, cluster)) continue;
      const resolved = await clusterObjectStore(ctx, cluster);
      workers.set(
        cluster.metadata.name,
        new ClusterWorker(cluster, resolved, {
          files,
          secretsDir: opts.secretsDir ? resolve(opts.secretsDir) : undefined,
          pg: { ...opts.pg, pgdata },
          state,
          metrics,
          shutdown: shutdown.signal,
          walArchivingProblem,
        }),
      );
    }

    // Backups a dead agent left pending or running are settled before anything new starts.
    for (const entry of state.backups.filter((b) => !isTerminal(b.phase))) {
      const worker = workers.get(entry.cluster);
      if (worker) await worker.resolveInterrupted(entry);
      else state.advance(entry.name, 'failed', { error: 'agent restarted while the backup was running (its Cluster is no longer in the manifests)', stoppedAt: new Date().toISOString() });
    }

    await walHost?.start();
    await Promise.all([...workers.values()].map((w) => w.refreshCatalog()));

    const notReady = (): string | undefined => {
      const stale = [...workers.values()].filter((w) => !w.view.lastContact || Date.now() - Date.parse(w.view.lastContact) > READY_MISSED_REFRESHES * refreshMs);
      if (stale.length > 0) return stale.map((w) => `object store of ${w.name} not reached recently${w.view.lastError ? ` (${w.view.lastError})` : ''}`).join('; ');
      return undefined;
    };
    const http = await startHttpServer(listen, {
      registry: metrics.registry,
      notReady,
      status: async () => ({
        agent: { pid: process.pid, startedAt: startedAt.toISOString(), url, stateDir: state.dir, pgdata: pgdata ?? null, walFastPath: walHost?.serving ?? false, ready: notReady() === undefined },
        walArchive: pgdata ? { ...(await archiveStatusCounts(pgdata)), problem: (await walArchivingProblem()) ?? null } : null,
        clusters: [...workers.values()].map((w) => w.view),
        scheduledBackups: runners.map((r) => r.view()),
        backups: [...state.backups].reverse(),
        scheduledDrills: drillRunners.map((r) => r.view()),
        drills: [...state.drills].reverse(),
      }),
      timeline: async (name) => {
        const worker = name === undefined ? [...workers.values()][0] : workers.get(name);
        if (!worker) throw new UserError(name === undefined ? 'no Cluster with a barmanObjectStore' : `no Cluster "${name}" (known: ${[...workers.keys()].join(', ')})`);
        return worker.timelineHtml();
      },
    });
    server = http.server;
    url = http.url;

    for (const { sb, schedule } of schedules) {
      const runner = backupScheduleRunner(sb, schedule, workers.get(sb.spec.cluster.name)!, state);
      runners.push(runner);
      runner.start();
    }
    if (drillSchedules.length) {
      const drillWorker = (drills = new DrillWorker({ files, secretsDir: opts.secretsDir ? resolve(opts.secretsDir) : undefined, pguser: opts.pg.pguser, state, metrics, shutdown: shutdown.signal }));
      for (const { sd, schedule } of drillSchedules) {
        const spec = { kind: 'ScheduledDrill' as const, name: sd.metadata.name, cluster: sd.spec.cluster.name, schedule: sd.spec.schedule, suspend: sd.spec.suspend, immediate: false };
        const runner = new ScheduleRunner(spec, schedule, (slot) => drillWorker.run(sd, slot), state);
        drillRunners.push(runner);
        runner.start();
      }
    }
    timers.push(setInterval(() => workers.forEach((w) => w.enqueueRetention('interval')), retentionMs));
    timers.push(setInterval(() => workers.forEach((w) => void w.refreshCatalog()), refreshMs));
    log.info(
      { url, stateDir: state.dir, clusters: [...workers.keys()], scheduledBackups: runners.map((r) => r.name), scheduledDrills: drillRunners.map((r) => r.name), walFastPath: walHost?.serving ?? false },
      'pgark agent running',
    );
  } catch (err) {
    await stop('startup failed');
    throw err;
  }

  startupDone();
  await stopped;
}
