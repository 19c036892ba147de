/**
 * Runs one schedule (a ScheduledBackup, or pgark's ScheduledDrill) with CNPG's ScheduledBackup
 * controller semantics (cnpg-barman-cloud.md section 2.8):
 *  - suspend: true takes no backup;
 *  - immediate: true takes a backup named `<sb>-<now>` the first time the agent sees the
 *    ScheduledBackup (CNPG: the first reconcile, lastCheckTime unset). The agent's state plays the
 *    part of the ScheduledBackup status, so restarting the agent does not take it again;
 *  - each slot's backup is named `<sb>-<YYYYMMDDhhmmss of the slot>` (UTC);
 *  - missed slots are not replayed: after a start, and after a late timer, the next slot is the
 *    first one after now.
 * What a slot runs, and what happens when one comes while the previous run is busy, is the
 * caller's `onSlot` (the cluster worker queues a backup; the drill worker runs a drill).
 */
import { next, scheduledBackupName, type Schedule } from '../schedule/cron.js';
import type { ScheduledBackup } from '../config/types.js';
import type { ClusterWorker } from './cluster-worker.js';
import { logger } from '../util/log.js';
import type { AgentState } from './state.js';

/** The fields of a ScheduledBackup or ScheduledDrill the runner acts on. */
export interface ScheduleSpec {
  kind: 'ScheduledBackup' | 'ScheduledDrill';
  name: string;
  cluster: string;
  schedule: string;
  suspend: boolean;
  immediate: boolean;
}

/** Its entry in the agent state: a ScheduledBackup's name as before, a ScheduledDrill's with its kind (names may repeat across kinds). */
function stateKey(spec: ScheduleSpec): string {
  return spec.kind === 'ScheduledBackup' ? spec.name : `${spec.kind}/${spec.name}`;
}

/** setTimeout's limit (about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ScheduleView {
  name: string;
  cluster: string;
  schedule: string;
  suspend: boolean;
  immediate: boolean;
  lastCheckTime?: string;
  lastScheduleTime?: string;
  nextScheduleTime?: string;
}

export class ScheduleRunner {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  private readonly key: string;

  constructor(
    private readonly spec: ScheduleSpec,
    private readonly schedule: Schedule,
    private readonly onSlot: (slot: Date, immediate: boolean) => void,
    private readonly state: AgentState,
  ) {
    this.key = stateKey(spec);
  }

  get name(): string {
    return this.spec.name;
  }

  view(): ScheduleView {
    const s = this.state.schedules[this.key];
    return {
      name: this.name,
      cluster: this.spec.cluster,
      schedule: this.spec.schedule,
      suspend: this.spec.suspend,
      immediate: this.spec.immediate,
      lastCheckTime: s?.lastCheckTime,
      lastScheduleTime: s?.lastScheduleTime,
      nextScheduleTime: this.spec.suspend ? undefined : s?.nextScheduleTime,
    };
  }

  start(now = new Date()): void {
    const log = logger();
    if (this.spec.suspend) {
      log.info({ [this.spec.kind]: this.name }, `${this.spec.kind} suspended: nothing runs`);
      return;
    }
    const known = this.state.schedules[this.key];
    let lastScheduleTime = known?.lastScheduleTime;
    if (!known?.lastCheckTime && this.spec.immediate) {
      this.onSlot(now, true);
      lastScheduleTime = now.toISOString();
    }
    this.arm(now, lastScheduleTime);
  }

  /** Records the check at `now` and waits for the first slot after it. */
  private arm(now: Date, lastScheduleTime: string | undefined): void {
    if (this.stopped) return;
    const slot = next(this.schedule, now);
    this.state.setSchedule(this.key, {
      cluster: this.spec.cluster,
      schedule: this.spec.schedule,
      lastCheckTime: now.toISOString(),
      lastScheduleTime,
      nextScheduleTime: slot?.toISOString(),
    });
    if (!slot) {
      logger().warn({ [this.spec.kind]: this.name, schedule: this.spec.schedule }, 'schedule has no activation within 5 years: nothing runs');
      return;
    }
    logger().debug({ [this.spec.kind]: this.name, next: slot.toISOString() }, 'next scheduled run');
    this.waitFor(slot);
  }

  private waitFor(slot: Date): void {
    const delay = slot.getTime() - Date.now();
    if (delay > 0) {
      this.timer = setTimeout(() => this.waitFor(slot), Math.min(delay, MAX_TIMER_MS));
      return;
    }
    this.fire(slot);
  }

  private fire(slot: Date): void {
    if (this.stopped) return;
    this.onSlot(slot, false);
    const now = new Date();
    this.arm(now.getTime() > slot.getTime() ? now : slot, slot.toISOString());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** A ScheduledBackup's runner: each slot queues the backup `<sb>-<YYYYMMDDhhmmss of the slot>` on its cluster's worker. */
export function backupScheduleRunner(sb: ScheduledBackup, schedule: Schedule, worker: Pick<ClusterWorker, 'enqueueBackup'>, state: AgentState): ScheduleRunner {
  const name = sb.metadata.name;
  return new ScheduleRunner(
    { kind: 'ScheduledBackup', name, cluster: sb.spec.cluster.name, schedule: sb.spec.schedule, suspend: sb.spec.suspend === true, immediate: sb.spec.immediate === true },
    schedule,
    (slot, immediate) => void worker.enqueueBackup({ name: scheduledBackupName(name, slot), scheduledBackup: name, slot, immediate }),
    state,
  );
}
