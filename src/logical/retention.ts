/**
 * Age-based retention of logical dumps (LOGICAL_BACKUP_S3_RETENTION_TIME, e.g. "7 days", "1 month"),
 * applied the same way on every provider. A whole backup run (one timestamp folder) is the unit:
 * runs older than the cutoff go, except the newest complete run, which is always kept.
 */
import { UserError } from '../util/errors.js';
import type { DumpEntry } from './catalog.js';

const UNITS: Record<string, (d: Date, n: number) => void> = {
  minute: (d, n) => d.setUTCMinutes(d.getUTCMinutes() - n),
  hour: (d, n) => d.setUTCHours(d.getUTCHours() - n),
  day: (d, n) => d.setUTCDate(d.getUTCDate() - n),
  week: (d, n) => d.setUTCDate(d.getUTCDate() - 7 * n),
  month: (d, n) => d.setUTCMonth(d.getUTCMonth() - n),
  year: (d, n) => d.setUTCFullYear(d.getUTCFullYear() - n),
};

export interface RetentionPeriod {
  amount: number;
  unit: keyof typeof UNITS;
  text: string;
}

/** "7 days", "1 month", "2weeks", "12 hours"; the singular and plural of minute/hour/day/week/month/year. */
export function parseRetention(text: string): RetentionPeriod {
  const m = /^\s*(\d+)\s*(minute|hour|day|week|month|year)s?\s*$/i.exec(text);
  if (!m || Number(m[1]) <= 0) {
    throw new UserError(
      `retention time "${text}" is not understood (expected a positive number and a unit, e.g. "7 days")`,
      'units: minutes, hours, days, weeks, months, years (LOGICAL_BACKUP_S3_RETENTION_TIME or --retention)',
    );
  }
  return { amount: Number(m[1]), unit: m[2].toLowerCase(), text: text.trim() };
}

export function retentionCutoff(period: RetentionPeriod, now: Date): Date {
  const d = new Date(now.getTime());
  UNITS[period.unit](d, period.amount);
  return d;
}

/** Every key (dumps and sidecars) of runs older than the cutoff, sparing the newest complete run. */
export function expiredKeys(entries: DumpEntry[], cutoff: Date): string[] {
  const newestComplete = entries
    .filter((e) => e.metaKey)
    .reduce<number | undefined>((max, e) => (max === undefined || e.takenAt.getTime() > max ? e.takenAt.getTime() : max), undefined);
  const expired = entries.filter((e) => e.takenAt < cutoff && e.takenAt.getTime() !== newestComplete);
  // Sidecars first: if deleting stops halfway, what is left looks incomplete rather than complete but missing.
  return [...expired.flatMap((e) => (e.metaKey ? [e.metaKey] : [])), ...expired.map((e) => e.key)];
}
