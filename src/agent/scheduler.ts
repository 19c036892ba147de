/**
 * Runs one ScheduledBackup with CNPG's controller semantics (cnpg-barman-cloud.md section 2.8):
 *  - suspend: true takes no backup;
 *  - immediate: true takes a backup named `<sb>-<now>` the first time the agent sees the
 *    ScheduledBackup (CNPG: the first reconcile, lastCheckTime unset). The agent's state plays the
 *    part of the ScheduledBackup status, so restarting the agent does not take it again;
 *  - each slot's backup is named `<sb>-<YYYYMMDDhhmmss of the slot>` (UTC);
 *  - missed slots are not replayed: after a start, and after a late timer, the next slot is the
 *    first one after now.
 * The cluster worker decides what happens when a slot comes while a backup runs.
 */
import { next, scheduledBackupName, type Schedule } from '../schedule/cron.js';
import type { ScheduledBackup } from '../config/types.js';
import { logger } from '../util/log.js';
import type { AgentState } from './state.js';
import type { ClusterWorker } from './cluster-worker.js';

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

  constructor(
    private readonly sb: ScheduledBackup,
    private readonly schedule: Schedule,
    private readonly worker: ClusterWorker,
    private readonly state: AgentState,
  ) {}

  get name(): string {
    return this.sb.metadata.name;
  }

  view(): ScheduleView {
    const s = this.state.schedules[this.name];
    return {
      name: this.name,
      cluster: this.sb.spec.cluster.name,
      schedule: this.sb.spec.schedule,
      suspend: this.sb.spec.suspend === true,
      immediate: this.sb.spec.immediate === true,
      lastCheckTime: s?.lastCheckTime,
      lastScheduleTime: s?.lastScheduleTime,
      nextScheduleTime: this.sb.spec.suspend ? undefined : s?.nextScheduleTime,
    };
  }

  start(now = new Date()): void {
    const log = logger();
    if (this.sb.spec.suspend) {
      log.info({ scheduledBackup: this.name }, 'ScheduledBackup suspended: no backups');
      return;
    }
    const known = this.state.schedules[this.name];
    let lastScheduleTime = known?.lastScheduleTime;
    if (!known?.lastCheckTime && this.sb.spec.immediate) {
      this.worker.enqueueBackup({ name: scheduledBackupName(this.name, now), scheduledBackup: this.name, slot: now, immediate: true });
      lastScheduleTime = now.toISOString();
    }
    this.arm(now, lastScheduleTime);
  }

  /** Records the check at `now` and waits for the first slot after it. */
  private arm(now: Date, lastScheduleTime: string | undefined): void {
    if (this.stopped) return;
    const slot = next(this.schedule, now);
    this.state.setSchedule(this.name, {
      cluster: this.sb.spec.cluster.name,
      schedule: this.sb.spec.schedule,
      lastCheckTime: now.toISOString(),
      lastScheduleTime,
      nextScheduleTime: slot?.toISOString(),
    });
    if (!slot) {
      logger().warn({ scheduledBackup: this.name, schedule: this.sb.spec.schedule }, 'schedule has no activation within 5 years: no backups');
      return;
    }
    logger().debug({ scheduledBackup: this.name, next: slot.toISOString() }, 'next scheduled backup');
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
    this.worker.enqueueBackup({ name: scheduledBackupName(this.name, slot), scheduledBackup: this.name, slot, immediate: false });
    const now = new Date();
    this.arm(now.getTime() > slot.getTime() ? now : slot, slot.toISOString());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
