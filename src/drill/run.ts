/**
 * One restore drill, end to end: pick the target (latest = the archive's newest segment, random =
 * a uniform LSN that replay is sure to reach), restore into a private scratch area with pgark's own
 * recovery (plan and pre-checks, download, settings with the prefetching restore_command), let
 * PostgreSQL replay and promote, run the checks, measure every step, store the report in the
 * store, and clean up unless asked to keep. The restored server shares nothing with the source:
 * archive_mode off, no primary_conninfo, listening only on its own socket directory.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { catalogWriteOptions, findBackup, listBackups, type Catalog } from '../catalog/catalog.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { annotationEncryption, clusterObjectStore, ENCRYPTION_ANNOTATION, findCluster, loadContext } from '../config/index.js';
import { isDrillTarget } from '../config/schema.js';
import type { DrillCheck } from '../config/types.js';
import { findPgBinaries } from '../pg/binaries.js';
import { CURRENT_TIMELINE_SQL } from '../pg/connect.js';
import { serverIdentity } from '../pg/local-server.js';
import { formatLsn, parseLsn, type Lsn } from '../pg/lsn.js';
import { DEFAULT_WAL_SEGMENT_SIZE, parseSegmentName, segmentStartLsn } from '../pg/wal-names.js';
import { runRecovery, type RecoveryResult } from '../recovery/apply.js';
import { stderrProgress, type Progress } from '../recovery/progress.js';
import { openObjectStore } from '../storage/open.js';
import { RECOVERY_LOG } from '../util/cnpg.js';
import { UserError } from '../util/errors.js';
import { summarizeWalArchive, type WalArchiveSummary } from '../wal/list.js';
import { ABORT_RECOVERY_MARK } from '../wal/restore-exit.js';
import { runChecks, withClient } from './checks.js';
import { DRILL_REPORT_VERSION, DRILL_STEPS, drillId, storeDrillReport, type CheckResult, type DrillReport, type DrillStep } from './report.js';
import { Scratch, freePort } from './scratch.js';

export interface DrillOptions {
  files: string[];
  secretsDir?: string;
  /** The Cluster whose backups are drilled, when the manifests hold several. */
  cluster?: string;
  /** latest, random, a time or an LSN. */
  target: string;
  /** Backup ID or name to restore (default: the one recovery selects for the target). */
  backup?: string;
  checks: DrillCheck[];
  keep?: boolean;
  /** Parent of the scratch directory (default TMPDIR). */
  scratch?: string;
  /** Refuse a backup whose restored size is larger. */
  maxDiskBytes?: number;
  /** Role for the checks (default postgres). */
  pguser?: string;
  jobs?: number;
  progress?: Progress;
  /** Aborting stops the server and removes the scratch area at once; the drill then fails as interrupted. */
  signal?: AbortSignal;
}

export interface DrillOutcome {
  report: DrillReport;
  /** Where the report was stored, or why it could not be. */
  reportKey?: string;
  storeError?: string;
}

/** Where each step begins, from the recovery's progress lines; a step left unseen takes no time. */
const STEP_STARTS: [RegExp, DrillStep][] = [
  [/^downloading backup /, 'download'],
  [/^starting PostgreSQL /, 'replay'],
  [/^promoted: new timeline /, 'promotion'],
];

class StepClock {
  current: DrillStep = 'plan';
  private readonly starts = new Map<DrillStep, number>([['plan', Date.now()]]);
  private ended?: number;

  enter(step: DrillStep): void {
    if (DRILL_STEPS.indexOf(step) <= DRILL_STEPS.indexOf(this.current)) return;
    this.starts.set(step, Date.now());
    this.current = step;
  }

  end(): void {
    this.ended ??= Date.now();
  }

  seconds(step: DrillStep): number {
    const start = this.starts.get(step);
    if (start === undefined) return 0;
    const later = DRILL_STEPS.slice(DRILL_STEPS.indexOf(step) + 1).map((s) => this.starts.get(s)).find((t) => t !== undefined);
    return ((later ?? this.ended ?? Date.now()) - start) / 1000;
  }

  entered(): DrillStep[] {
    return DRILL_STEPS.filter((s) => this.starts.has(s));
  }

  total(): number {
    return ((this.ended ?? Date.now()) - this.starts.get('plan')!) / 1000;
  }
}

/** What the archive says before the drill: newest segment, gaps, the recoverable window. */
interface ArchiveFacts {
  newestSegment?: string;
  newestStored?: Date;
  gapSegments: number;
  summary: WalArchiveSummary;
  oldestBackupEnd?: Date;
}

function archiveFacts(catalog: Catalog, summary: WalArchiveSummary): ArchiveFacts {
  const timelines = summary.timelines;
  const stored = timelines.map((t) => t.lastStored).filter((d): d is Date => d !== undefined);
  const done = catalog.backups.filter((b) => b.status === 'DONE' && b.end_time);
  return {
    // PostgreSQL's default target timeline is the newest one: its last segment is where "latest" ends.
    newestSegment: timelines.at(-1)?.lastSegment,
    newestStored: stored.length ? new Date(Math.max(...stored.map((d) => d.getTime()))) : undefined,
    gapSegments: timelines.reduce((n, t) => n + t.gaps.reduce((m, g) => m + g.missing, 0), 0),
    summary,
    oldestBackupEnd: done.map((b) => b.end_time!.toDate()).sort((a, b) => a.getTime() - b.getTime())[0],
  };
}

/**
 * Where a random target may fall: from just after the backup's end LSN (end_xlog, the end of its
 * backup-end record; recovery picks a backup only when end_xlog < targetLSN) to just before the
 * start of the newest archived segment. The drill asks for that LSN inclusively, and PostgreSQL
 * (recoveryStopsAfter, recovery_target_inclusive = true) stops after replaying the first record
 * that begins at or after it. For every LSN below the newest segment's start, that record begins
 * no later than the first record beginning in the newest segment, which the archive holds whole
 * unless a single WAL record fills a segment. So replay always reaches the target, where a random
 * time could fall after the archive's last commit and end recovery "before the configured
 * recovery target was reached". Uniform over LSNs is uniform over the WAL written since the backup.
 */
export interface RandomLsnRange {
  /** Exclusive. */
  after: Lsn;
  /** Exclusive: the start of `newestSegment`. */
  before: Lsn;
  newestSegment: string;
}

export function randomLsnRange(backupEnd: Lsn, newestSegment: string, segmentSize: number): RandomLsnRange | undefined {
  const before = segmentStartLsn(parseSegmentName(newestSegment, segmentSize), segmentSize);
  return before - backupEnd > 1n ? { after: backupEnd, before, newestSegment } : undefined;
}

export function drawLsn(range: RandomLsnRange, random: () => number): Lsn {
  const choices = range.before - range.after - 1n;
  // A double has 53 bits: clamp so rounding never lands on the excluded end.
  const offset = BigInt(Math.min(Math.floor(random() * Number(choices)), Number.MAX_SAFE_INTEGER));
  return range.after + 1n + (offset < choices ? offset : choices - 1n);
}

/** The recoveryTarget section of the drill's Cluster, and for a random target the LSN drawn and why. */
function recoveryTargetFor(
  target: string,
  facts: ArchiveFacts,
  catalog: Catalog,
  chosen: BackupInfo | undefined,
  random: () => number,
): { rt?: Record<string, unknown>; lsn?: Lsn; reason?: string } {
  const backupID = chosen ? { backupID: chosen.backup_id } : {};
  if (target === 'latest') return { rt: chosen ? backupID : undefined };
  if (target === 'random') {
    // Without --backup, draw over every DONE backup's window: recovery then picks the backup for the LSN.
    const from = chosen ?? catalog.backups.find((b) => b.status === 'DONE' && b.end_xlog);
    const segmentSize = from?.xlog_segment_size ?? DEFAULT_WAL_SEGMENT_SIZE;
    const range = from?.end_xlog && facts.newestSegment ? randomLsnRange(parseLsn(from.end_xlog), facts.newestSegment, segmentSize) : undefined;
    if (!range) {
      throw new UserError(
        `no WAL to pick a random target in: ${from?.end_xlog ? `backup ${from.backup_id} ends at ${from.end_xlog}` : 'no DONE backup'}, ${facts.newestSegment ? `newest archived segment ${facts.newestSegment}` : 'no archived WAL'}`,
        'a random target needs at least one archived segment that begins after the end of a backup; let WAL archive, or drill with --target latest',
      );
    }
    const lsn = drawLsn(range, random);
    const reason = `uniform over the WAL between the end of backup ${from!.backup_id} (${formatLsn(range.after)}) and the start of the newest archived segment ${range.newestSegment} (${formatLsn(range.before)}), where replay always reaches it`;
    return { rt: { ...backupID, targetLSN: formatLsn(lsn) }, lsn, reason };
  }
  if (target.includes('/')) return { rt: { ...backupID, targetLSN: target }, lsn: parseLsn(target) };
  return { rt: { ...backupID, targetTime: target } };
}

/** The backup the drill will restore, for the disk-size limit: the one asked for, else the newest DONE one ending before the target. */
function likelyBackup(catalog: Catalog, chosen: BackupInfo | undefined, time: Date | undefined, lsn: Lsn | undefined): BackupInfo | undefined {
  if (chosen) return chosen;
  const done = catalog.backups.filter(
    (b) => b.status === 'DONE' && b.end_time && (!time || b.end_time.toDate() <= time) && (lsn === undefined || (b.end_xlog && parseLsn(b.end_xlog) < lsn)),
  );
  return done.at(-1);
}

function restoredBytes(catalog: Catalog, b: BackupInfo): number {
  return b.size ?? (catalog.objects.get(b.backup_id) ?? []).reduce((n, o) => n + o.size, 0);
}

/** The server log's last FATAL or PANIC line, read from its tail only. */
const LOG_TAIL_BYTES = 64 * 1024;
const FATAL_LINE = /\b(FATAL|PANIC):\s+(.*)$/;
const STARTUP_REFUSAL = /the database system is (starting up|not yet accepting connections|shutting down)/;

export function lastFatalLine(logFile: string): string | null {
  if (!existsSync(logFile)) return null;
  const fd = openSync(logFile, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, LOG_TAIL_BYTES));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = FATAL_LINE.exec(lines[i]);
      if (m && !STARTUP_REFUSAL.test(m[2])) return `${m[1]}:  ${m[2].trim()}`;
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

async function recoveryPoint(host: string, port: number, user: string): Promise<NonNullable<DrillReport['recoveryPoint']>> {
  return withClient({ host, port, user }, 'postgres', async (client) => {
    // Both stay at the last record replayed once recovery has ended.
    const r = await client.query<{ lsn: string | null; ts: Date | null; tli: number }>(
      `SELECT pg_catalog.pg_last_wal_replay_lsn()::text AS lsn, pg_catalog.pg_last_xact_replay_timestamp() AS ts, ${CURRENT_TIMELINE_SQL} AS tli`,
    );
    const row = r.rows[0];
    return { lsn: row.lsn, time: row.ts?.toISOString() ?? null, timeline: Number(row.tli) };
  });
}

function rate(bytes: number, seconds: number): number | null {
  return seconds > 0 ? Math.round(bytes / seconds) : null;
}

export async function runDrill(opts: DrillOptions, random: () => number = Math.random): Promise<DrillOutcome> {
  if (!isDrillTarget(opts.target)) {
    throw new UserError(`--target ${JSON.stringify(opts.target)} is not a drill target`, 'latest, random, a time such as 2024-05-01T12:00:00Z, or an LSN such as 0/3000060');
  }
  const base = opts.progress ?? stderrProgress();
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const source = findCluster(ctx.manifests, opts.cluster);
  const resolved = await clusterObjectStore(ctx, source);
  const drillName = `${source.metadata.name}-drill`;
  if (ctx.manifests.clusters.some((c) => c.metadata.name === drillName)) {
    throw new UserError(`the manifests already hold a Cluster "${drillName}", the name the drill gives its restored copy`, 'drill with manifests that do not define it');
  }
  const store = await openObjectStore(resolved);
  try {
    const clock = new StepClock();
    const startedAt = new Date();
    const catalog = await listBackups(store, resolved.serverName);
    // Bad input (an unknown backup) stops here: nothing was restored, so nothing is reported.
    const chosen = opts.backup ? findBackup(catalog, opts.backup) : undefined;
    const newest = chosen ?? catalog.backups.filter((b) => b.status === 'DONE').at(-1);
    const facts = archiveFacts(catalog, await summarizeWalArchive(store, resolved.serverName, newest?.xlog_segment_size ?? DEFAULT_WAL_SEGMENT_SIZE));
    const report: DrillReport = {
      version: DRILL_REPORT_VERSION,
      id: drillId(startedAt),
      cluster: source.metadata.name,
      serverName: resolved.serverName,
      ok: false,
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      target: { requested: opts.target, description: '', time: null, lsn: null, reason: null },
      backup: null,
      steps: [],
      rto: { plan: 0, download: 0, replay: 0, promotion: 0, checks: 0, total: 0 },
      recoveryPoint: null,
      rpo: {
        newestWal: facts.newestSegment ?? null,
        newestWalStored: facts.newestStored?.toISOString() ?? null,
        ageSeconds: facts.newestStored ? (startedAt.getTime() - facts.newestStored.getTime()) / 1000 : null,
      },
      recoverableWindow: {
        from: facts.oldestBackupEnd?.toISOString() ?? null,
        to: facts.newestStored?.toISOString() ?? null,
        seconds: facts.oldestBackupEnd && facts.newestStored ? (facts.newestStored.getTime() - facts.oldestBackupEnd.getTime()) / 1000 : null,
      },
      wal: { gapSegments: facts.gapSegments, gaps: facts.summary.timelines.flatMap((t) => t.gaps) },
      bytes: { downloaded: 0, downloadBytesPerSecond: null, walSegmentsReplayed: 0, walBytes: 0, replayBytesPerSecond: null },
      checks: [],
      failure: null,
      scratch: { dir: null, kept: false },
    };
    const progress: Progress = {
      step(message) {
        base.step(message);
        for (const [re, step] of STEP_STARTS) if (re.test(message)) clock.enter(step);
      },
    };
    let scratch: Scratch | undefined;
    const onAbort = () => void scratch?.cleanup();
    opts.signal?.addEventListener('abort', onAbort);
    let result: RecoveryResult | undefined;
    try {
      const { rt, lsn, reason } = recoveryTargetFor(opts.target, facts, catalog, chosen, random);
      if (rt?.targetTime) report.target.time = String(rt.targetTime);
      if (lsn !== undefined) report.target.lsn = formatLsn(lsn);
      if (reason) {
        report.target.reason = reason;
        progress.step(`random target: LSN ${report.target.lsn}, ${reason}`);
      }
      const likely = likelyBackup(catalog, chosen, rt?.targetTime ? new Date(String(rt.targetTime)) : undefined, lsn);
      if (opts.maxDiskBytes !== undefined && likely && restoredBytes(catalog, likely) > opts.maxDiskBytes) {
        throw new UserError(`backup ${likely.backup_id} restores ${restoredBytes(catalog, likely)} bytes, more than resources.maxDiskBytes (${opts.maxDiskBytes})`, 'raise maxDiskBytes or give the drill a larger scratch directory');
      }
      const who = serverIdentity();
      scratch = Scratch.create(opts.scratch, who);
      report.scratch.dir = scratch.dir;
      // The copy reads the store with the source's keys: a recovering Cluster's keys come from its own annotation.
      const encryption = annotationEncryption(source);
      const drillCluster = {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'Cluster',
        metadata: { name: drillName, ...(source.metadata.namespace ? { namespace: source.metadata.namespace } : {}), ...(encryption ? { annotations: { [ENCRYPTION_ANNOTATION]: encryption.secret } } : {}) },
        spec: {
          ...(source.spec.imageName ? { imageName: source.spec.imageName } : {}),
          bootstrap: { recovery: { source: source.metadata.name, ...(rt ? { recoveryTarget: rt } : {}) } },
          // The resolved store's settings, whichever form the source Cluster names it in (in-tree or a plugin entry's ObjectStore).
          externalClusters: [{ name: source.metadata.name, barmanObjectStore: { ...resolved.config, serverName: resolved.serverName } }],
        },
      };
      scratch.writeForServer(scratch.manifestFile, `# pgark drill ${report.id}: the restored copy of Cluster "${source.metadata.name}"\n${stringify(drillCluster, { lineWidth: 0 })}`);
      const files = [...opts.files, scratch.manifestFile];
      const drillCtx = await loadContext({ files, secretsDir: opts.secretsDir });
      const user = opts.pguser ?? 'postgres';
      result = await runRecovery(drillCtx, findCluster(drillCtx.manifests, drillName), {
        pgdata: scratch.pgdata,
        start: true,
        manifestFiles: files,
        secretsDir: opts.secretsDir,
        pghost: scratch.socketDir,
        pgport: await freePort(),
        pguser: user,
        jobs: opts.jobs,
        progress,
        extraSettings: [
          ['hba_file', scratch.hbaFile],
          ['primary_conninfo', ''],
          ['primary_slot_name', ''],
        ],
        // latest is the newest archived segment: a gap before it must fail the drill, not end it early.
        archiveEnd: opts.target === 'latest' ? facts.newestSegment : undefined,
      });
      clock.enter('checks');
      const plan = result.plan as { target: string; backup: { id: string; name: string | null; endTime: string | null; downloadBytes: number; postgresMajor: number }; wal: { bytes: number } };
      report.target.description = plan.target;
      report.backup = { id: plan.backup.id, name: plan.backup.name, endTime: plan.backup.endTime, bytes: plan.backup.downloadBytes };
      const server = result.server!;
      report.recoveryPoint = await recoveryPoint(server.host, server.port, user);
      progress.step(`recovery point: ${report.recoveryPoint.time ?? 'no transaction replayed'} at ${report.recoveryPoint.lsn} on timeline ${report.recoveryPoint.timeline}; running checks`);
      report.checks = await runChecks(
        { host: server.host, port: server.port, user, who, binaries: findPgBinaries(plan.backup.postgresMajor), recoveryPointTime: report.recoveryPoint.time ? new Date(report.recoveryPoint.time) : undefined },
        opts.checks,
      );
      for (const c of report.checks) progress.step(`check ${c.name}: ${c.status}: ${c.detail}`);
      const failed = report.checks.filter((c) => c.status === 'failed');
      if (failed.length) throw new CheckFailure(failed);
      clock.end();
      report.ok = true;
    } catch (err) {
      clock.end();
      const message = opts.signal?.aborted ? `interrupted (${String(opts.signal.reason)}) during ${clock.current}` : (err as Error).message;
      const fatal = scratch && clock.current !== 'checks' ? lastFatalLine(join(scratch.pgdata, RECOVERY_LOG)) : null;
      report.failure = { step: failedStep(clock.current, message), message, fatal };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (result?.download) {
        report.bytes.downloaded = result.download.bytes;
        report.bytes.downloadBytesPerSecond = rate(result.download.bytes, result.download.seconds);
      }
      if (result?.recovery) {
        const walBytes = (result.plan as { wal: { bytes: number } }).wal.bytes;
        report.bytes.walSegmentsReplayed = result.recovery.segmentsRestored;
        report.bytes.walBytes = walBytes;
        report.bytes.replayBytesPerSecond = rate(walBytes, clock.seconds('replay'));
      }
      for (const step of DRILL_STEPS) report.rto[step] = clock.seconds(step);
      report.rto.total = clock.total();
      // A step after the failed one (promotion, after a replay pgark stopped) did not succeed either.
      const failedAt = report.failure ? DRILL_STEPS.indexOf(report.failure.step) : DRILL_STEPS.length;
      report.steps = clock.entered().map((step) => ({ step, seconds: clock.seconds(step), ok: DRILL_STEPS.indexOf(step) < failedAt }));
      report.finishedAt = new Date().toISOString();
      report.scratch.kept = Boolean(opts.keep && scratch && !opts.signal?.aborted);
      await scratch?.cleanup(report.scratch.kept);
      if (report.scratch.kept) progress.step(`kept the restored copy in ${scratch!.dir}, server stopped; start it with pg_ctl -D ${scratch!.pgdata} start`);
    }
    const outcome: DrillOutcome = { report };
    try {
      outcome.reportKey = await storeDrillReport(store, report, catalogWriteOptions(resolved.config));
    } catch (err) {
      outcome.storeError = (err as Error).message;
    }
    return outcome;
  } finally {
    await store.close();
  }
}

/**
 * PostgreSQL names the new timeline before recovery_end_command checks that replay reached the
 * archive's end: a recovery pgark stopped for short or damaged WAL is the replay's failure.
 */
const REPLAY_FAILURE = new RegExp(`${ABORT_RECOVERY_MARK}|WAL replay ended at`);

function failedStep(current: DrillStep, message: string): DrillStep {
  return current === 'promotion' && REPLAY_FAILURE.test(message) ? 'replay' : current;
}

class CheckFailure extends Error {
  constructor(failed: CheckResult[]) {
    super(`check(s) failed: ${failed.map((c) => `${c.name}${c.database ? ` (${c.database})` : ''}: ${c.detail}`).join('; ')}`);
  }
}
