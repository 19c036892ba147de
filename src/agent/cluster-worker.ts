/**
 * Everything the agent does for one Cluster's object store, one job at a time: scheduled backups
 * and retention runs go through a single queue, so only one backup of a cluster runs at a time
 * (CNPG's waitIfOtherBackupsRunning) and retention never plans over a catalog a backup of ours
 * is changing. Catalog refreshes (read-only) run beside the queue and feed the metrics.
 *
 * A slot that comes while a backup of the cluster runs is queued once, as CNPG's ScheduledBackup
 * controller does (it requeues while a child backup runs, then creates the backup for the first
 * slot after its last check): one pending backup per ScheduledBackup at most; further slots
 * arriving while one is already pending are skipped with a log line.
 *
 * After every backup, success or failure, the Cluster's retentionPolicy is applied and the
 * catalog re-read, as CNPG's backupMaintenance does.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, ResolvedObjectStore } from '../config/types.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import type { ObjectStore } from '../storage/types.js';
import { safeDisplay } from '../storage/destination.js';
import { catalogWriteOptions, listBackups, deleteBackupObjects, type Catalog } from '../catalog/catalog.js';
import { recoverability } from '../catalog/recoverability.js';
import { backupInfoKey } from '../catalog/layout.js';
import { assertNotBlocked, clusterRetention, type RetentionPolicy } from '../catalog/retention.js';
import { retentionPass } from '../catalog/retention-run.js';
import { archivedWalFiles } from '../wal/list.js';
import type { ConfigRef } from '../wal/protocol.js';
import { WalTargetCache } from '../wal/target.js';
import { logger } from '../util/log.js';
import { processAlive, type AgentState, type BackupEntry } from './state.js';
import type { AgentMetrics } from './metrics.js';
import { runBackupProcess } from './backup-process.js';
import { loadTimeline } from '../timeline/load.js';
import { renderHtml } from '../timeline/render.js';

export interface WorkerConfig {
  files: string[];
  secretsDir?: string;
  pg: PgConnectionOptions;
  state: AgentState;
  metrics: AgentMetrics;
  /** Aborted when the agent stops: ends the running backup. */
  shutdown: AbortSignal;
  /** The WAL archiving problem the agent sees right now, if any (sets walArchivingFailing). */
  walArchivingProblem?: () => Promise<string | undefined>;
}

export interface BackupRequestOfSlot {
  name: string;
  scheduledBackup: string;
  slot: Date;
  immediate: boolean;
}

type Job = { kind: 'backup'; name: string; scheduledBackup: string } | { kind: 'retention'; reason: string };

export interface ClusterView {
  name: string;
  serverName: string;
  destination: string;
  retentionPolicy?: string;
  lastContact?: string;
  lastError?: string;
  firstRecoverabilityPoint?: string;
  lastSuccessfulBackup?: string;
  lastFailedBackup?: string;
  backupsInCatalog?: number;
  lastRetention?: { at: string; ok: boolean; deleted: number; error?: string };
}

const WAL_CHECK_INTERVAL_MS = 5000;
const PROCESS_EXIT_WAIT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ClusterWorker {
  private readonly queue: Job[] = [];
  private draining: Promise<void> = Promise.resolve();
  private running = false;
  /** The store, opened from the manifests and Secrets read again as they change (rotated credentials need no restart). */
  private readonly stores = new WalTargetCache();
  private readonly ref: ConfigRef;
  private readonly policy?: RetentionPolicy;
  readonly view: ClusterView;
  private agentFailureMs = 0;
  private refreshing?: Promise<void>;

  constructor(
    readonly cluster: Cluster,
    private readonly resolved: ResolvedObjectStore,
    private readonly cfg: WorkerConfig,
  ) {
    const policyText = resolved.retentionPolicy;
    this.policy = clusterRetention(cluster, policyText);
    this.view = { name: cluster.metadata.name, serverName: resolved.serverName, destination: safeDisplay(resolved.destinationPath), retentionPolicy: policyText };
    this.ref = { files: cfg.files, secretsDir: cfg.secretsDir, cluster: cluster.metadata.name };
  }

  get name(): string {
    return this.cluster.metadata.name;
  }

  private async store(): Promise<ObjectStore> {
    return (await this.stores.get(this.ref)).store;
  }

  /** The recoverability timeline page of this Cluster's store (/timeline). */
  async timelineHtml(): Promise<string> {
    return renderHtml(await loadTimeline(await this.store(), this.resolved.serverName, { retentionPolicy: this.view.retentionPolicy }));
  }

  /** Queues the backup of a slot; false when it is skipped (already known, or one already pending). */
  enqueueBackup(req: BackupRequestOfSlot): boolean {
    const log = logger();
    const state = this.cfg.state;
    if (state.find(req.name)) {
      log.info({ cluster: this.name, backup: req.name }, 'backup of this slot already recorded; not taking it again');
      return false;
    }
    const waiting = this.queue.find((j) => j.kind === 'backup' && j.scheduledBackup === req.scheduledBackup);
    if (waiting) {
      log.warn(
        { cluster: this.name, scheduledBackup: req.scheduledBackup, skipped: req.name, pending: (waiting as { name: string }).name },
        'slot skipped: a backup of this ScheduledBackup is already waiting for the running one',
      );
      return false;
    }
    state.add({ name: req.name, cluster: this.name, scheduledBackup: req.scheduledBackup, slot: req.slot.toISOString(), immediate: req.immediate });
    this.push({ kind: 'backup', name: req.name, scheduledBackup: req.scheduledBackup });
    return true;
  }

  /** Queues a retention run unless one is already waiting or the cluster has no policy. */
  enqueueRetention(reason: string): void {
    if (!this.policy || this.queue.some((j) => j.kind === 'retention')) return;
    this.push({ kind: 'retention', reason });
  }

  private push(job: Job): void {
    this.queue.push(job);
    if (!this.running) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        if (this.cfg.shutdown.aborted) {
          if (job.kind === 'backup') this.cfg.state.advance(job.name, 'failed', { error: 'agent stopped before the backup started', stoppedAt: new Date().toISOString() });
          continue;
        }
        if (job.kind === 'backup') await this.runBackup(job.name, job.scheduledBackup);
        else await this.runRetention(job.reason);
      }
    } finally {
      this.running = false;
    }
  }

  /** Resolves once the queue is empty and nothing runs (used at shutdown, after aborting). */
  async idle(): Promise<void> {
    while (this.running) await this.draining;
  }

  private async runBackup(name: string, scheduledBackup: string): Promise<void> {
    const { state, metrics } = this.cfg;
    const log = logger();
    const started = new Date();
    state.advance(name, 'running', { startedAt: started.toISOString() });
    metrics.backupRunning.set({ cluster: this.name }, 1);
    log.info({ cluster: this.name, backup: name }, 'scheduled backup started');
    const walWatch = setInterval(() => void this.checkWalArchiving(name), WAL_CHECK_INTERVAL_MS);
    void this.checkWalArchiving(name);
    let backupId: string | undefined;
    try {
      const outcome = await runBackupProcess(
        { files: this.cfg.files, secretsDir: this.cfg.secretsDir, cluster: this.name, name, scheduledBackup, pg: this.cfg.pg },
        this.cfg.shutdown,
        {
          onSpawn: (pid) => state.annotate(name, { pid }),
          onBackupId: (id) => {
            backupId = id;
            state.annotate(name, { backupId: id });
          },
        },
      );
      const seconds = (Date.now() - started.getTime()) / 1000;
      if (outcome.ok) {
        state.advance(name, 'completed', { backupId: outcome.backupId, stoppedAt: new Date().toISOString(), storedBytes: outcome.storedBytes, pid: undefined });
        metrics.backups.inc({ cluster: this.name, result: 'completed' });
        metrics.backupDuration.observe({ cluster: this.name, result: 'completed' }, seconds);
        metrics.backupSize.observe({ cluster: this.name }, outcome.storedBytes);
        metrics.lastBackupSize.set({ cluster: this.name }, outcome.storedBytes);
        metrics.uploadedBytes.inc({ kind: 'backup' }, outcome.storedBytes);
        log.info({ cluster: this.name, backup: name, backupId: outcome.backupId, bytesStored: outcome.storedBytes, seconds }, 'scheduled backup completed');
      } else {
        await this.removeUncommitted(backupId);
        const stoppedAt = new Date();
        state.advance(name, 'failed', { error: outcome.message, stoppedAt: stoppedAt.toISOString(), pid: undefined });
        this.agentFailureMs = Math.max(this.agentFailureMs, stoppedAt.getTime());
        metrics.backups.inc({ cluster: this.name, result: 'failed' });
        metrics.backupDuration.observe({ cluster: this.name, result: 'failed' }, seconds);
        log.error({ cluster: this.name, backup: name, backupId, err: outcome.message }, 'scheduled backup failed');
      }
    } finally {
      clearInterval(walWatch);
      metrics.backupRunning.set({ cluster: this.name }, 0);
    }
    if (!this.cfg.shutdown.aborted) await this.maintenance();
  }

  private async checkWalArchiving(name: string): Promise<void> {
    const problem = await this.cfg.walArchivingProblem?.().catch(() => undefined);
    const entry = this.cfg.state.find(name);
    if (problem && entry && entry.phase === 'running') this.cfg.state.advance(name, 'walArchivingFailing', { error: problem });
  }

  /**
   * A backup that ended without backup.info (process killed, agent stopping) leaves tars under
   * base/<id>/ that no catalog shows. The directory was created empty for this backup
   * (takeBackup picks an unused id), so removing it touches nothing else.
   */
  private async removeUncommitted(backupId: string | undefined): Promise<void> {
    if (!backupId) return;
    try {
      const store = await this.store();
      if (await store.head(backupInfoKey(this.resolved.serverName, backupId))) return;
      const r = await deleteBackupObjects(store, this.resolved.serverName, backupId);
      if (r.objectsDeleted > 0) logger().info({ cluster: this.name, backupId, objects: r.objectsDeleted }, 'removed the objects of an uncommitted backup');
    } catch (err) {
      logger().warn({ cluster: this.name, backupId, err: (err as Error).message }, 'could not remove the objects of an uncommitted backup');
    }
  }

  /** backupMaintenance: retention (when a policy is set), then the catalog for the metrics. */
  private async maintenance(): Promise<void> {
    if (this.policy) await this.runRetention('after backup');
    else await this.refreshCatalog(true);
  }

  private async runRetention(reason: string): Promise<void> {
    const { metrics } = this.cfg;
    const log = logger();
    const at = new Date().toISOString();
    try {
      const store = await this.store();
      const { catalog, plan } = await retentionPass(store, this.resolved.serverName, this.policy!, archivedWalFiles(store, this.resolved.serverName), {
        apply: true,
        write: catalogWriteOptions(this.resolved.config),
        onDeleted: (backupId) => log.info({ cluster: this.name, backupId }, 'retention deleted backup'),
      });
      this.noteCatalog(catalog);
      assertNotBlocked(plan);
      metrics.retentionRuns.inc({ cluster: this.name, result: 'ok' });
      metrics.retentionDeletedBackups.inc({ cluster: this.name }, plan.steps.length);
      this.view.lastRetention = { at, ok: true, deleted: plan.steps.length };
      log.info({ cluster: this.name, reason, deleted: plan.steps.length, walFilesDeleted: plan.walFilesDeleted, bytesFreed: plan.bytesFreed }, 'retention policy applied');
    } catch (err) {
      // As CNPG: a failed retention is reported and the agent carries on.
      metrics.retentionRuns.inc({ cluster: this.name, result: 'failed' });
      this.view.lastRetention = { at, ok: false, deleted: 0, error: (err as Error).message };
      log.error({ cluster: this.name, reason, err: (err as Error).message }, 'retention policy failed');
    }
    await this.refreshCatalog(true);
  }

  /**
   * Re-reads the catalog: metrics, /status and readiness. Never throws; one listing at a time.
   * `fresh`: the listing must start after this call (after a change the caller made), so one
   * already in flight is waited for, not shared.
   */
  async refreshCatalog(fresh = false): Promise<void> {
    if (fresh && this.refreshing) await this.refreshing;
    this.refreshing ??= this.readCatalog().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async readCatalog(): Promise<void> {
    try {
      const store = await this.store();
      this.noteCatalog(await listBackups(store, this.resolved.serverName));
    } catch (err) {
      this.stores.failed(this.ref, err);
      this.view.lastError = (err as Error).message;
      logger().warn({ cluster: this.name, err: (err as Error).message }, 'could not read the backup catalog');
    }
  }

  private noteCatalog(catalog: Catalog): void {
    const { metrics } = this.cfg;
    const now = new Date();
    const r = recoverability(catalog);
    const lastFailedMs = Math.max(this.agentFailureMs, r.lastFailedBackup ?? 0);
    const labels = { cluster: this.name };
    metrics.firstRecoverabilityPoint.set(labels, (r.firstRecoverabilityPoint ?? 0) / 1000);
    metrics.lastAvailableBackup.set(labels, (r.lastSuccessfulBackup ?? 0) / 1000);
    this.view.firstRecoverabilityPoint = r.firstRecoverabilityPoint === undefined ? undefined : new Date(r.firstRecoverabilityPoint).toISOString();
    this.view.lastSuccessfulBackup = r.lastSuccessfulBackup === undefined ? undefined : new Date(r.lastSuccessfulBackup).toISOString();
    metrics.lastFailedBackup.set(labels, lastFailedMs / 1000);
    this.view.lastFailedBackup = lastFailedMs > 0 ? new Date(lastFailedMs).toISOString() : undefined;
    metrics.storeReachable.set(labels, now.getTime() / 1000);
    this.view.lastContact = now.toISOString();
    this.view.lastError = undefined;
    this.view.backupsInCatalog = catalog.backups.length;
  }

  /**
   * Settles a backup the state shows as pending or running from an agent that died: its process
   * is made sure to be gone, then the catalog decides. A backup.info under its name says what
   * really happened (DONE: completed; FAILED: failed with its error); without one it failed
   * because of the restart, and objects it left are removed. Its slot is never run again.
   */
  async resolveInterrupted(entry: BackupEntry): Promise<void> {
    const { state } = this.cfg;
    const log = logger();
    if (entry.pid !== undefined) await waitForExit(entry.pid);
    const now = new Date().toISOString();
    const reason = entry.phase === 'pending' ? 'agent restarted before the backup started' : 'agent restarted while the backup was running';
    try {
      const store = await this.store();
      const catalog = await listBackups(store, this.resolved.serverName);
      const found = catalog.backups.find((b) => b.backup_name === entry.name);
      if (found?.status === 'DONE') {
        state.advance(entry.name, 'completed', { backupId: found.backup_id, stoppedAt: found.end_time?.toDate().toISOString() ?? now, pid: undefined });
      } else if (found) {
        state.advance(entry.name, 'failed', { backupId: found.backup_id, error: `${reason}: ${found.error ?? `backup.info status ${found.status}`}`, stoppedAt: now, pid: undefined });
      } else {
        await this.removeUncommitted(entry.backupId);
        state.advance(entry.name, 'failed', { error: reason, stoppedAt: now, pid: undefined });
      }
    } catch (err) {
      state.advance(entry.name, 'failed', { error: `${reason} (the object store could not be checked: ${(err as Error).message})`, stoppedAt: now, pid: undefined });
    }
    if (state.find(entry.name)?.phase === 'failed') this.agentFailureMs = Math.max(this.agentFailureMs, Date.parse(now));
    log.warn({ cluster: this.name, backup: entry.name, phase: state.find(entry.name)?.phase }, 'settled a backup interrupted by an agent restart');
  }

  async close(): Promise<void> {
    await this.stores.close();
  }
}

/** Whether `pid` is a backup process of an agent (pids are reused: never wait for or kill anything else). */
function isBackupProcess(pid: number): boolean {
  try {
    return processAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('backup-child.js');
  } catch {
    return false;
  }
}

/** Waits for a backup process of a dead agent to exit (it exits when its IPC channel closes); kills it if it lingers. */
async function waitForExit(pid: number): Promise<void> {
  const deadline = Date.now() + PROCESS_EXIT_WAIT_MS;
  while (isBackupProcess(pid) && Date.now() < deadline) await sleep(200);
  if (isBackupProcess(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
