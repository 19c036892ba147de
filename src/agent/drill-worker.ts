/**
 * The agent's restore drills: each ScheduledDrill slot runs one drill (drill/run.ts, as
 * `pgark drill` does), one at a time across the agent since a drill restores a whole backup onto
 * the local disk. A slot that comes while a drill runs is skipped, not queued. Each drill is an
 * entry of the agent state with a backup's phases, and its report sets the pgark_drill_* metrics.
 * Shutdown aborts the running drill, which stops its server and removes its scratch directory.
 */
import type { ScheduledDrill } from '../config/types.js';
import { DRILL_STEPS, type DrillReport } from '../drill/report.js';
import { runDrill } from '../drill/run.js';
import { scheduledBackupName } from '../schedule/cron.js';
import { logger } from '../util/log.js';
import type { AgentMetrics } from './metrics.js';
import type { AgentState } from './state.js';
import { isTerminal } from './phases.js';

export interface DrillWorkerConfig {
  files: string[];
  secretsDir?: string;
  pguser?: string;
  state: AgentState;
  metrics: AgentMetrics;
  shutdown: AbortSignal;
}

export class DrillWorker {
  private running?: Promise<void>;

  constructor(private readonly cfg: DrillWorkerConfig) {
    // After a restart the gauges start from the state, so an alert on the last success does not fire falsely.
    const done = cfg.state.drills.filter((d) => d.phase === 'completed' && d.stoppedAt);
    for (const d of done) cfg.metrics.drillLastSuccess.set({ cluster: d.cluster }, Date.parse(d.stoppedAt!) / 1000);
    // A drill a dead agent left unfinished cannot be resumed; its slot counts as failed.
    for (const d of cfg.state.drills.filter((e) => !isTerminal(e.phase))) {
      cfg.state.advanceDrill(d.name, 'failed', { error: 'agent restarted during the drill', stoppedAt: new Date().toISOString() });
    }
  }

  /** Runs the drill of a slot unless one is running. */
  run(sd: ScheduledDrill, slot: Date): void {
    const name = scheduledBackupName(sd.metadata.name, slot);
    const log = logger();
    if (this.running) {
      log.warn({ scheduledDrill: sd.metadata.name, skipped: name }, 'drill slot skipped: a drill is still running');
      return;
    }
    if (this.cfg.shutdown.aborted || this.cfg.state.drills.some((d) => d.name === name)) return;
    this.cfg.state.addDrill({ name, cluster: sd.spec.cluster.name, scheduledDrill: sd.metadata.name, slot: slot.toISOString() });
    this.running = this.drill(sd, name).finally(() => (this.running = undefined));
  }

  private async drill(sd: ScheduledDrill, name: string): Promise<void> {
    const { state, metrics } = this.cfg;
    const log = logger();
    const cluster = sd.spec.cluster.name;
    state.advanceDrill(name, 'running', { startedAt: new Date().toISOString() });
    try {
      const { report, reportKey, storeError } = await runDrill({
        files: this.cfg.files,
        secretsDir: this.cfg.secretsDir,
        cluster,
        target: sd.spec.target,
        checks: sd.spec.checks ?? [],
        scratch: sd.spec.resources?.scratchDir,
        maxDiskBytes: sd.spec.resources?.maxDiskBytes,
        pguser: this.cfg.pguser,
        signal: this.cfg.shutdown,
        progress: { step: (message) => log.debug({ drill: name }, message) },
      });
      this.record(cluster, report);
      const patch = { stoppedAt: report.finishedAt, reportKey, rtoSeconds: report.rto.total, failedStep: report.failure?.step };
      if (report.ok) {
        state.advanceDrill(name, 'completed', patch);
        log.info({ drill: name, rtoSeconds: report.rto.total, recoveryPoint: report.recoveryPoint, reportKey, storeError }, 'restore drill passed');
      } else {
        state.advanceDrill(name, 'failed', { ...patch, error: `${report.failure!.message}${report.failure!.fatal ? ` (server log: ${report.failure!.fatal})` : ''}` });
        log.error({ drill: name, step: report.failure!.step, error: report.failure!.message, fatal: report.failure!.fatal, reportKey }, 'restore drill failed');
      }
    } catch (err) {
      // Refused before restoring anything (manifests, store, backup): a failed drill all the same.
      metrics.drillLastStatus.set({ cluster }, 0);
      state.advanceDrill(name, 'failed', { error: (err as Error).message, stoppedAt: new Date().toISOString() });
      log.error({ drill: name, error: (err as Error).message }, 'restore drill could not run');
    }
  }

  private record(cluster: string, r: DrillReport): void {
    const m = this.cfg.metrics;
    m.drillLastStatus.set({ cluster }, r.ok ? 1 : 0);
    if (r.ok) m.drillLastSuccess.set({ cluster }, Date.parse(r.finishedAt) / 1000);
    for (const step of [...DRILL_STEPS, 'total' as const]) m.drillRto.set({ cluster, step }, r.rto[step]);
    if (r.recoverableWindow.seconds !== null) m.recoverabilityWindow.set({ cluster }, r.recoverableWindow.seconds);
    m.walGapSegments.set({ cluster }, r.wal.gapSegments);
  }

  /** Resolves once no drill runs (at shutdown, after the abort). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
