/** `pgark schedule next`: check ScheduledBackup schedules (CNPG's robfig/cron dialect, seconds first). */
import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface ScheduleNextCliOptions extends ConfigOptions {
  count: string;
  from?: string;
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UserError(`-n ${text}: expected a whole number from 1 to 1000`);
  return n;
}

function instant(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new UserError(`--from ${text}: not a date/time`, 'use ISO 8601, e.g. 2024-01-01T00:00:00Z');
  return d;
}

export function register(program: Command): void {
  const schedule = program.command('schedule').description('ScheduledBackup schedules');
  withOptions(schedule.command('next').description('print the next run times (UTC) and backup names of every ScheduledBackup in the manifests'), 'schedule next').action(
    action(async (opts: ScheduleNextCliOptions) => {
      const { scheduleNext } = await import('../../commands/schedule.js');
      await scheduleNext({ files: configFiles(opts), count: positiveInt(opts.count), from: instant(opts.from), json: Boolean(opts.json) });
    }),
  );
}
