/** `pgark schedule next`: the next run times of every ScheduledBackup, so a user can check a schedule. */
import { loadManifests } from '../config/index.js';
import type { ScheduledBackup } from '../config/types.js';
import { UserError } from '../util/errors.js';
import { nextN, parseSchedule, scheduledBackupName } from '../schedule/cron.js';

export interface ScheduleNextOptions {
  files: string[];
  count: number;
  from: Date;
  json: boolean;
}

interface ScheduleReport {
  name: string;
  namespace: string | null;
  cluster: string;
  schedule: string;
  suspend: boolean;
  immediate: boolean;
  warning: string | null;
  next: { time: string; backupName: string }[];
}

function report(sb: ScheduledBackup, from: Date, count: number): ScheduleReport {
  const { schedule, warning } = parseSchedule(sb.spec.schedule);
  return {
    name: sb.metadata.name,
    namespace: sb.metadata.namespace ?? null,
    cluster: sb.spec.cluster.name,
    schedule: sb.spec.schedule,
    suspend: sb.spec.suspend ?? false,
    immediate: sb.spec.immediate ?? false,
    warning: warning ?? null,
    next: nextN(schedule, from, count).map((t) => ({ time: t.toISOString(), backupName: scheduledBackupName(sb.metadata.name, t) })),
  };
}

function text(r: ScheduleReport, count: number): string {
  let out = `ScheduledBackup "${r.name}" (cluster "${r.cluster}"): schedule "${r.schedule}", times in UTC\n`;
  if (r.warning) out += `  warning: ${r.warning}\n`;
  if (r.suspend) out += '  suspended (suspend: true): no backup is taken at these times\n';
  if (r.immediate) out += '  immediate: true: a first backup is also taken as soon as the schedule starts\n';
  if (r.next.length === 0) out += '  no run time within 5 years (the schedule never matches a real date)\n';
  else if (r.next.length < count) out += `  only ${r.next.length} run time(s) within 5 years\n`;
  for (const n of r.next) out += `  ${n.time}  ${n.backupName}\n`;
  return out;
}

export async function scheduleNext(opts: ScheduleNextOptions): Promise<void> {
  const manifests = await loadManifests(opts.files);
  if (manifests.scheduledBackups.length === 0) {
    throw new UserError('no ScheduledBackup in the manifests', 'pass the file holding the ScheduledBackup with -f');
  }
  const reports = manifests.scheduledBackups.map((sb) => report(sb, opts.from, opts.count));
  if (opts.json) {
    // The warning is in the JSON too; stderr keeps it visible to someone piping the output.
    for (const r of reports) if (r.warning) process.stderr.write(`pgark: warning: ${r.warning}\n`);
    process.stdout.write(JSON.stringify({ from: opts.from.toISOString(), scheduledBackups: reports }, null, 2) + '\n');
    return;
  }
  process.stdout.write(reports.map((r) => text(r, opts.count)).join('\n'));
}
