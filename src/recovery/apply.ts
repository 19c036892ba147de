/**
 * Recovery of a Cluster whose manifest has spec.bootstrap.recovery, end to end:
 * plan + pre-checks (nothing written) -> download and extraction -> recovery settings ->
 * optionally start PostgreSQL, follow the replay to the target and the promotion, and ensure the
 * application database. Used by `pgark restore` and `pgark apply`.
 */
import { chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { ConfigContext } from '../config/index.js';
import type { Cluster } from '../config/types.js';
import { serverIdentity, type RunAs } from '../pg/local-server.js';
import { PgarkError } from '../util/errors.js';
import { CreatedDirectories } from './directories.js';
import { keepOutRuntimeDir, startEarlyWal, type EarlyWal } from './early-wal.js';
import { emptyDeltaStats, deltaTransferText } from './delta.js';
import { downloadBackup, syncPaths, type DownloadResult } from './download.js';
import { GENERATED_SOURCE_MANIFEST, RECOVERY_LOG } from '../util/cnpg.js';
import { formatLsn } from '../pg/lsn.js';
import { finishCommand, restoreCommand, restoreConfigRef, type ManifestRef } from './pgark-command.js';
import type { FinishOptions } from './finish.js';
import { openFinishHandoff } from './finish-handoff.js';
import type { ConfigRef } from '../wal/protocol.js';
import { warmRestore } from '../wal/client.js';
import { planRecovery, planSummary, type RecoveryPlan } from './plan.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { stderrProgress, type Progress } from './progress.js';
import { connectionFromPidFile, ensureApplicationDatabase, followRecovery, requestPromotion, serverState, startServer, type DatabaseReport, type RecoveryOutcome } from './server.js';
import { CHECK_EMPTY_MARKER } from '../util/cnpg.js';
import { AUTO_CONF, dropRecoveryTargets, recoverySignal, writeRecoveryConfig } from './settings.js';
import { setting } from '../util/options.js';
import { describeTarget, recoveryTargetSettings } from './target.js';

export interface RecoveryOptions {
  pgdata: string;
  start?: boolean;
  dryRun?: boolean;
  /** Manifest files and secrets directory for the commands PostgreSQL runs (default: the files the manifests came from). */
  manifestFiles?: string[];
  secretsDir?: string;
  /** Written as port / listen_addresses / unix_socket_directories when given. */
  pghost?: string;
  pgport?: number;
  /** Role pgark connects as after promotion (default postgres). */
  pguser?: string;
  /** Written after the connection settings (a restore drill's private hba_file, an empty primary_conninfo). */
  extraSettings?: [string, string][];
  /** With no recovery target: the segment replay must reach (default: the last one contiguous from the backup). */
  archiveEnd?: string;
  /** Tars downloaded at once (default data.jobs of the source store, else 4). */
  jobs?: number;
  progress?: Progress;
  /** Restore over the existing data directory, writing only what differs (delta.ts). */
  delta?: boolean;
}

export interface RecoveryResult {
  plan: Record<string, unknown>;
  dryRun: boolean;
  download?: DownloadResult;
  recovery?: RecoveryOutcome;
  database?: DatabaseReport;
  server?: { host: string; port: number; timeline: number; archiveCommand: string; logFile: string };
  seconds: number;
}

const DEFAULT_JOBS = 4;
/**
 * How recent the early daemon's history listing must be to answer PostgreSQL's first probe without
 * another: half the life of the absence marker it left (restore-service.ts, HISTORY_ABSENT_MS).
 */
const HISTORY_FRESH_SECONDS = 5;
/** Polls (250 ms apart) for the reload recovery_end_command asks for: generous, a busy postmaster is slow to get to it. */
const RELOAD_POLLS = 120;

function manifestRefOf(ctx: ConfigContext, cluster: Cluster, opts: RecoveryOptions): ManifestRef {
  const files = opts.manifestFiles?.length
    ? opts.manifestFiles
    : [...new Set([cluster, ...ctx.manifests.clusters, ...ctx.manifests.backups, ...ctx.manifests.secrets].map((m) => m.origin.file))];
  return { files: files.map((f) => resolve(f)), secretsDir: opts.secretsDir };
}

function connectionSettings(opts: RecoveryOptions): [string, string][] {
  const out: [string, string][] = [];
  if (opts.pgport !== undefined) out.push(['port', String(opts.pgport)]);
  if (opts.pghost?.startsWith('/')) out.push(['unix_socket_directories', opts.pghost], ['listen_addresses', '']);
  else if (opts.pghost) out.push(['listen_addresses', opts.pghost], ['unix_socket_directories', '']);
  return out;
}

export async function runRecovery(ctx: ConfigContext, cluster: Cluster, opts: RecoveryOptions): Promise<RecoveryResult> {
  const started = Date.now();
  const progress = opts.progress ?? stderrProgress();
  const pgdata = resolve(opts.pgdata);
  progress.step(`recovering Cluster "${cluster.metadata.name}" into ${pgdata}: running pre-checks`);
  const { plan, store } = await planRecovery(ctx, cluster, { pgdata, delta: opts.delta });
  try {
    reportPlan(plan, progress);
    const summary = planSummary(plan);
    if (opts.dryRun) {
      progress.step('dry run: nothing downloaded, nothing written');
      return { plan: summary, dryRun: true, seconds: (Date.now() - started) / 1000 };
    }
    const who = serverIdentity();
    const dirs = new CreatedDirectories();
    // A failed delta leaves the directory for the next --delta to finish: it was not pgark's to remove.
    if (!opts.delta) dirs.track(pgdata);
    const delta = opts.delta ? emptyDeltaStats() : undefined;
    for (const t of plan.backup.tablespaces) dirs.track(t.location);
    let download: DownloadResult;
    const wal = walSource(ctx, cluster, plan, opts);
    const finish = finishOptions(ctx, cluster, plan, opts, wal);
    const walRef = restoreConfigRef(wal.restoreRef, wal.restoreOpts);
    // A delta keeps what is in the directory (the daemon's files would be extras to remove), and a
    // generated source manifest does not exist until configure(): the daemon then starts after the data step.
    let early: EarlyWal | undefined;
    try {
      if (opts.start && !delta && !wal.generated) early = startEarlyWal(pgdata, walRef, plan.window.firstSegment, plan.backup.segmentSize, who);
      const jobs = opts.jobs ?? plan.source.store.config.data?.jobs ?? DEFAULT_JOBS;
      progress.step(`downloading backup ${plan.backup.backupId}: ${plan.objects.length} archive(s), ${formatBytes(plan.downloadBytes)}, ${jobs} at a time`);
      const objects = early ? keepOutRuntimeDir(pgdata, plan.objects) : plan.objects;
      download = await downloadBackup(store, plan.backup, objects, { pgdata, jobs, progress, who, delta, age: plan.source.store.age });
      if (delta) {
        download.delta = delta;
        progress.step(
          `delta: ${delta.kept} files kept, ${delta.rewritten} written, ${delta.removed} removed; ${formatBytes(delta.bytesWritten)} written, ${formatBytes(delta.bytesSkipped)} equal and skipped, ${formatBytes(download.bytes)} transferred`,
        );
        progress.step(deltaTransferText(delta));
      }
      progress.step(`restored ${download.files} files (${formatBytes(download.bytes)} downloaded) in ${formatDuration(download.seconds)}`);
      progress.step(objectVerificationText(download));
      progress.step(verificationText(download));
      const written = configure(cluster, plan, opts, who, wal, finish);
      await syncPaths([...written.map((f) => join(pgdata, f)), pgdata]);
    } catch (err) {
      await early?.stop();
      dirs.removeAll();
      throw err;
    }
    const result: RecoveryResult = { plan: summary, dryRun: false, download, seconds: 0 };
    if (opts.start) await startAndFollow(plan, opts, who, progress, result, walRef, early, finish);
    else progress.step(`data directory ready: start PostgreSQL ${plan.major} on ${pgdata} to replay WAL up to the target and promote`);
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await store.close();
  }
}

function reportPlan(plan: RecoveryPlan, progress: Progress): void {
  const b = plan.backup;
  const w = plan.window;
  progress.step(`source: ${plan.sourceDescription}`);
  progress.step(`backup ${b.backupId}${b.backupName ? ` (${b.backupName})` : ''}: ${plan.reason}; PostgreSQL ${plan.major}, ended ${b.endTime?.toISOString() ?? '?'}, ${formatBytes(plan.downloadBytes)} to download`);
  progress.step(`target: ${describeTarget(plan.target)}`);
  progress.step(
    `WAL to replay: ${w.firstSegment} .. ${w.lastSegment} (${w.segmentsToReplay} segments, ${formatBytes(w.bytesToReplay)}) on timeline ${w.targetTimeline}, prefetching ${plan.source.maxParallel} at a time`,
  );
  const earliest = plan.earliest;
  progress.step(
    `recoverable: from ${earliest.time?.toISOString() ?? '?'} (${earliest.lsn !== undefined ? formatLsn(earliest.lsn) : '?'}, end of backup ${earliest.backupId}) to ${w.latestTime?.toISOString() ?? '?'} (${w.latestLsn !== undefined ? formatLsn(w.latestLsn) : '?'})`,
  );
  if (plan.newArchive) progress.step(`after promotion the cluster archives to ${plan.newArchive.displayUrl} server "${plan.newArchive.serverName}" (empty-archive check ${plan.newArchive.emptyCheck})`);
  else progress.step('the Cluster has no store of its own (spec.backup.barmanObjectStore or a pgark.io plugin entry): WAL archiving stays off after promotion');
  progress.step(`estimated time: about ${formatDuration(plan.estimateSeconds)}`);
}

function objectVerificationText(d: DownloadResult): string {
  const v = d.objects;
  if (!v.digests) return `stored objects NOT verified as a whole: ${v.reason}`;
  // A delta that read every tar by ranges read no object whole: "all 0 verified" would claim a check that never ran.
  if (v.objects === 0) return 'stored objects not read whole (every tar was read by ranges): no SHA-256 of backup.info checked; the files are verified by backup_manifest below';
  return `verified: all ${v.objects} stored object(s) have the SHA-256 recorded in backup.info when they were stored`;
}

function verificationText(d: DownloadResult): string {
  const v = d.verification;
  return v.manifest
    ? `verified: all ${v.files} files of backup_manifest restored with their size and CRC-32C, nothing else restored, the manifest's own SHA-256 correct`
    : `NOT verified file by file: ${v.reason}; only the tar headers' checksums and the compression format's own checks (none for an uncompressed tar) guarded the data`;
}

/**
 * The segment replay must reach: the archive's end as listed now, when there is no target. With a
 * target, PostgreSQL itself fails when replay ends before reaching it.
 */
function replayMustReach(plan: RecoveryPlan, opts: RecoveryOptions): string | undefined {
  return plan.target.kind === 'end-of-archive' ? (opts.archiveEnd ?? plan.window.lastSegment) : undefined;
}

/**
 * Whether pgark promotes the server itself: with --start and no recovery target it runs the server
 * in standby mode and runs `pg_ctl promote` as soon as it is up. PostgreSQL then replays all the
 * WAL the archive holds, exactly as archive recovery does ("before failover, any WAL immediately
 * available in the archive or in pg_wal will be restored"), and ends it with an end-of-recovery
 * record instead of archive recovery's immediate checkpoint, which the server waits for before it
 * accepts a write (0.5 s for a 74 MB database after 128 MiB of WAL; it grows with what replay
 * dirtied). The checkpoint then runs in the background, and the WAL it needs is in pg_wal.
 * A recovery target keeps archive recovery: PostgreSQL's own check that replay reached the
 * target is archive recovery's.
 */
function promotedByPgark(plan: RecoveryPlan, opts: RecoveryOptions): boolean {
  return opts.start === true && plan.target.kind === 'end-of-archive';
}

/** What recovery_end_command finishes (`restore --finish-recovery`, or this process: finish-handoff.ts). */
function finishOptions(ctx: ConfigContext, cluster: Cluster, plan: RecoveryPlan, opts: RecoveryOptions, wal: WalSource): FinishOptions {
  const several = ctx.manifests.clusters.length > 1;
  return { pgdata: plan.pgdata, ref: wal.ref, cluster: several ? cluster.metadata.name : undefined, archives: plan.newArchive !== undefined, archiveEnd: replayMustReach(plan, opts) };
}

/** What restore_command names: the manifests, and the Cluster or source whose WAL it fetches. */
interface WalSource {
  ref: ManifestRef;
  restoreRef: ManifestRef;
  restoreOpts: { source?: string; cluster?: string };
  /** A one-Cluster manifest to write into the data directory, when no manifest names the backup's server folder. */
  generated?: { file: string; doc: Record<string, unknown> };
}

function walSource(ctx: ConfigContext, cluster: Cluster, plan: RecoveryPlan, opts: RecoveryOptions): WalSource {
  const ref = manifestRefOf(ctx, cluster, opts);
  const several = ctx.manifests.clusters.length > 1;
  if (plan.source.kind === 'source') {
    return { ref, restoreRef: ref, restoreOpts: { source: plan.source.externalCluster, cluster: several ? cluster.metadata.name : undefined } };
  }
  if (plan.sourceServerName === plan.source.store.serverName) {
    return { ref, restoreRef: ref, restoreOpts: { cluster: several || plan.source.walCluster !== cluster.metadata.name ? plan.source.walCluster : undefined } };
  }
  // The backup sits under a server folder no manifest names: a one-Cluster manifest pointing there serves the WAL.
  const name = `${cluster.metadata.name}-recovery-source`;
  const doc = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name, ...(cluster.metadata.namespace ? { namespace: cluster.metadata.namespace } : {}) },
    spec: { backup: { barmanObjectStore: { ...plan.source.store.config, serverName: plan.sourceServerName } } },
  };
  const file = join(plan.pgdata, GENERATED_SOURCE_MANIFEST);
  return { ref, restoreRef: { ...ref, files: [...ref.files, file] }, restoreOpts: { cluster: name }, generated: { file, doc } };
}

/**
 * Recovery settings, the signal file, the empty-archive marker (and the generated source manifest
 * when needed); returns the names written.
 */
function configure(cluster: Cluster, plan: RecoveryPlan, opts: RecoveryOptions, who: RunAs | undefined, wal: WalSource, finish: FinishOptions): string[] {
  const pgdata = plan.pgdata;
  const standby = promotedByPgark(plan, opts);
  const written = [AUTO_CONF, recoverySignal({ standby }), CHECK_EMPTY_MARKER];
  if (wal.generated) {
    writeFileSync(wal.generated.file, `# written by pgark restore; removed when the recovery ends\n${stringify(wal.generated.doc)}`, { mode: 0o600 });
    written.push(GENERATED_SOURCE_MANIFEST);
  }
  writeRecoveryConfig(
    pgdata,
    {
      archives: plan.newArchive !== undefined,
      standby,
      restoreCommand: restoreCommand(wal.restoreRef, wal.restoreOpts),
      recoveryEndCommand: finishCommand(finish.ref, finish.pgdata, finish.cluster, finish.archives, finish.archiveEnd),
      targetSettings: recoveryTargetSettings(cluster.spec.bootstrap!.recovery!.recoveryTarget),
      connectionSettings: [...connectionSettings(opts), ...(opts.extraSettings ?? [])],
    },
    `pgark restore of Cluster "${cluster.metadata.name}" from backup ${plan.backup.backupId} (${new Date().toISOString()})`,
  );
  if (who) for (const f of written) chownSync(join(pgdata, f), who.uid, who.gid);
  return written;
}

async function startAndFollow(
  plan: RecoveryPlan,
  opts: RecoveryOptions,
  who: RunAs | undefined,
  progress: Progress,
  result: RecoveryResult,
  walRef: ConfigRef,
  early: EarlyWal | undefined,
  finish: FinishOptions,
): Promise<void> {
  const logFile = join(plan.pgdata, RECOVERY_LOG);
  const logDir = dirname(logFile);
  if (!existsSync(logDir)) mkdirSync(logDir, { mode: 0o700 });
  if (who) chownSync(logDir, who.uid, who.gid);
  // A log restored from an older backup holds an earlier recovery's lines: follow only what this server appends.
  const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
  // PostgreSQL's first requests (a history probe, then the backup's first segments) would each wait
  // for a Node start, the daemon's start and round trips; the daemon does them now instead. Started
  // during the data step, it is asked again unless it listed the history moments ago: that absence
  // answers for seconds only (restore-service.ts), and the daemon may have exited idle during a long
  // download. Asking again was a round trip to the store on a short restore's path (0.2 s over a WAN).
  const warmStarted = Date.now();
  const earlyProblem = await early?.warming;
  const listedAgo = early?.warmedAt === undefined ? undefined : (warmStarted - early.warmedAt) / 1000;
  const fresh = listedAgo !== undefined && listedAgo < Math.min(HISTORY_FRESH_SECONDS, setting('walDaemonIdleSeconds') / 2);
  const warm = fresh ? undefined : await warmRestore(plan.pgdata, walRef, plan.window.firstSegment, plan.backup.segmentSize, who);
  if (warm) progress.step(`WAL not prefetched before the start (restore_command fetches it): ${warm}`);
  else if (fresh) progress.step(`WAL daemon started during the data step, prefetching from ${plan.window.firstSegment}; history listed ${formatDuration(listedAgo)} ago`);
  else if (early && !earlyProblem) progress.step(`WAL daemon started during the data step, prefetching from ${plan.window.firstSegment}; history listed again in ${formatDuration((Date.now() - warmStarted) / 1000)}`);
  else progress.step(`WAL daemon started and prefetching from ${plan.window.firstSegment} in ${formatDuration((Date.now() - warmStarted) / 1000)}`);
  progress.step(`starting PostgreSQL ${plan.binaries.version} (${plan.binaries.binDir}); server log: ${logFile}`);
  const handoff = openFinishHandoff(finish, who);
  const user = opts.pguser ?? 'postgres';
  const promote = promotedByPgark(plan, opts) ? () => requestPromotion(plan.binaries, plan.pgdata, who) : undefined;
  try {
    await startServer(plan.binaries, plan.pgdata, who, logFile);
    result.recovery = await followRecovery(plan.pgdata, { path: logFile, from: logStart }, progress, describeTarget(plan.target), user, replayMustReach(plan, opts), { promote, finish: handoff });
  } finally {
    handoff?.close();
  }
  const conn = connectionFromPidFile(plan.pgdata);
  if (!conn) throw new PgarkError(`PostgreSQL promoted but ${plan.pgdata}/postmaster.pid does not say where it listens`);
  const rec = plan.cluster.spec.bootstrap!.recovery!;
  if (rec.database && rec.owner) {
    result.database = await ensureApplicationDatabase(conn, user, rec.database, rec.owner);
    for (const a of result.database.actions) progress.step(a);
    for (const w of result.database.warnings) progress.step(`warning: ${w}`);
  }
  let state = await serverState(conn, user);
  // recovery_end_command has asked for a reload; give the postmaster a moment to apply it.
  for (let i = 0; i < RELOAD_POLLS && state.recoveryEndCommand !== ''; i++) {
    await new Promise((r) => setTimeout(r, 250));
    state = await serverState(conn, user);
  }
  // Only once that reload has read the file may the recovery targets leave it (settings.ts).
  if (state.recoveryEndCommand === '') dropRecoveryTargets(plan.pgdata);
  else progress.step(`warning: the reload that ends the recovery was not seen; recovery_target* settings stay in ${AUTO_CONF} (inert without a signal file)`);
  result.server = { ...conn, timeline: state.timeline, archiveCommand: state.archiveCommand, logFile };
  progress.step(`PostgreSQL is running on ${conn.host}:${conn.port}, timeline ${state.timeline}, archive_command = ${state.archiveCommand}`);
}

export function summaryText(r: RecoveryResult): string {
  const p = r.plan as ReturnType<typeof planSummary> & Record<string, any>;
  const lines = [
    `Cluster:      ${p.cluster}`,
    `Source:       ${p.source}`,
    `Backup:       ${p.backup.id}${p.backup.name ? ` (${p.backup.name})` : ''}: ${p.backup.reason}`,
    `              PostgreSQL ${p.backup.postgresMajor}, ${formatBytes(p.backup.downloadBytes)} in ${p.backup.objects.length} archive(s), ended ${p.backup.endTime}`,
    `Target:       ${p.target}`,
    `WAL:          ${p.wal.first} .. ${p.wal.last} (${p.wal.segments} segments, ${formatBytes(p.wal.bytes)}), timeline ${p.wal.timeline}, prefetch ${p.wal.prefetch}`,
    `Recoverable:  ${p.recoverable.earliest.time} (${p.recoverable.earliest.lsn}) .. ${p.recoverable.latest.time} (${p.recoverable.latest.lsn})`,
    `Estimate:     about ${formatDuration(p.estimateSeconds)}`,
  ];
  if (r.dryRun) lines.push('Dry run:      nothing was downloaded or written');
  if (r.download) {
    lines.push(`Downloaded:   ${formatBytes(r.download.bytes)}, ${r.download.files} files in ${formatDuration(r.download.seconds)}`);
    lines.push(`Objects:      ${r.download.objects.digests ? `${r.download.objects.objects} with the SHA-256 recorded at backup time` : `not verified (${r.download.objects.reason})`}`);
    lines.push(`Verified:     ${r.download.verification.manifest ? `${r.download.verification.files} files against backup_manifest (size, CRC-32C)` : `no (${r.download.verification.reason})`}`);
    const d = r.download.delta;
    if (d) lines.push(`Delta:        ${d.kept} files kept, ${d.rewritten} written, ${d.removed} removed; ${formatBytes(d.bytesWritten)} written, ${formatBytes(d.bytesSkipped)} skipped; ${deltaTransferText(d)}`);
  }
  if (r.recovery) lines.push(`Replayed:     ${r.recovery.segmentsRestored} WAL segments from the archive in ${formatDuration(r.recovery.seconds)}${r.recovery.stoppedAt ? `; ${r.recovery.stoppedAt}` : ''}`);
  if (r.database) lines.push(`Database:     ${[...r.database.actions, ...r.database.warnings].join('; ')}`);
  if (r.server) lines.push(`Running:      ${r.server.host}:${r.server.port}, timeline ${r.server.timeline}, archive_command = ${r.server.archiveCommand}`);
  else if (!r.dryRun) lines.push(`Ready:        start PostgreSQL on ${p.pgdata}; it replays to the target and promotes`);
  lines.push(`Total:        ${formatDuration(r.seconds)}`);
  return `${lines.join('\n')}\n`;
}
