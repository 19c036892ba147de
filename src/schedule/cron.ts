/**
 * CNPG's ScheduledBackup schedule language: robfig/cron v1.2.0 `cron.Parse`, i.e.
 * NewParser(Second | Minute | Hour | Dom | Month | DowOptional | Descriptor)
 * (../shared/reference/cnpg-barman-cloud.md section 1.4), evaluated in UTC like the operator.
 *
 * Written by hand rather than with croner: croner 11 disagrees with robfig on what
 * a schedule means, checked by running it: it reads 5 fields as minute-first Unix cron (robfig:
 * seconds first, so "0 0 * * *" is hourly, not daily), it ORs day-of-month with a `*\/2`
 * day-of-week (robfig v1.2.0 gives every `*`-started field the "star" bit, which makes it AND),
 * it accepts 7 for Sunday and L/W/# (robfig rejects them), and it has no `@every`.
 *
 * robfig behaviours kept on purpose: list items are split on ',' with empty items dropped,
 * `*-5` is `*`, `N/step` means N-max/step, descriptors are matched case-sensitively and only
 * at the very start of the string, Next() gives up after 5 years.
 */

import { UserError } from '../util/errors.js';

export interface FieldSpec {
  name: 'second' | 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week';
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };
const DOW_NAMES = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

export const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'day-of-week', min: 0, max: 6, names: DOW_NAMES },
];

/** The allowed values of each field (robfig's bit sets) plus whether it started with `*` or `?`. */
export interface FieldSet {
  values: Set<number>;
  star: boolean;
}

export type Schedule =
  | {
      kind: 'spec';
      expression: string;
      second: FieldSet;
      minute: FieldSet;
      hour: FieldSet;
      dom: FieldSet;
      month: FieldSet;
      dow: FieldSet;
    }
  | { kind: 'every'; expression: string; delayMs: number };

export interface ParsedSchedule {
  schedule: Schedule;
  /** Set for 5-field expressions, which are easily mistaken for Unix cron. */
  warning?: string;
}

/** An invalid schedule (exit code 2): the message names the field, the value and what is wrong; the hint what is allowed. */
export class ScheduleError extends UserError {
  constructor(
    readonly expression: string,
    readonly detail: string,
    hint?: string,
  ) {
    super(`invalid schedule "${expression}": ${detail}`, hint);
  }
}

function parseIntOrName(text: string, field: FieldSpec, item: string, expression: string): number {
  const named = field.names?.[text.toLowerCase()];
  if (named !== undefined) return named;
  return parseUint(text, field, item, expression);
}

/** Go's strconv.Atoi (optional sign, decimal digits), then robfig's "negative not allowed". */
function parseUint(text: string, field: FieldSpec, item: string, expression: string): number {
  if (!/^[+-]?\d+$/.test(text)) {
    const names = field.names ? ` or a name (${Object.keys(field.names).join(', ')})` : '';
    throw new ScheduleError(expression, `${field.name} field "${item}": "${text}" is not a number${names}`, allowedHint(field));
  }
  const n = Number(text);
  if (n < 0) throw new ScheduleError(expression, `${field.name} field "${item}": negative number ${n} not allowed`, allowedHint(field));
  return n;
}

function allowedHint(field: FieldSpec): string {
  let hint = `${field.name} allows ${field.min}-${field.max}`;
  if (field.names) hint += ` or ${Object.keys(field.names)[0]}-${Object.keys(field.names).at(-1)} (case-insensitive)`;
  hint += ', *, ?, a-b, a/step, */step and comma lists';
  if (field.name === 'day-of-week') hint += '; Sunday is 0 (7 is not accepted)';
  return hint;
}

function parseRange(item: string, field: FieldSpec, expression: string): { values: number[]; star: boolean } {
  const rangeAndStep = item.split('/');
  const lowAndHigh = rangeAndStep[0].split('-');
  const fail = (detail: string): never => {
    throw new ScheduleError(expression, `${field.name} field "${item}": ${detail}`, allowedHint(field));
  };
  let start: number;
  let end: number;
  let star = false;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = field.min;
    end = field.max;
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0], field, item, expression);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1], field, item, expression);
    else return fail('too many hyphens');
  }
  let step = 1;
  if (rangeAndStep.length === 2) {
    step = parseUint(rangeAndStep[1], field, item, expression);
    if (lowAndHigh.length === 1) end = field.max;
  } else if (rangeAndStep.length > 2) {
    fail('too many slashes');
  }
  if (start < field.min) fail(`beginning of range (${start}) below minimum (${field.min})`);
  if (end > field.max) {
    if (field.name === 'day-of-week' && end === 7) {
      throw new ScheduleError(expression, `day-of-week field "${item}": 7 is above the maximum (6)`, 'Sunday is 0 in this cron dialect; use 0 or sun');
    }
    fail(`end of range (${end}) above maximum (${field.max})`);
  }
  if (start > end) fail(`beginning of range (${start}) beyond end of range (${end})`);
  if (step === 0) fail('step must be a positive number');
  const values: number[] = [];
  for (let v = start; v <= end; v += step) values.push(v);
  return { values, star };
}

function parseField(text: string, field: FieldSpec, expression: string): FieldSet {
  const set: FieldSet = { values: new Set(), star: false };
  for (const item of text.split(',').filter((s) => s !== '')) {
    const r = parseRange(item, field, expression);
    for (const v of r.values) set.values.add(v);
    set.star ||= r.star;
  }
  return set;
}

const all = (field: FieldSpec): FieldSet => ({ values: new Set(Array.from({ length: field.max - field.min + 1 }, (_, i) => field.min + i)), star: true });
const only = (v: number): FieldSet => ({ values: new Set([v]), star: false });

const [, , HOUR, DOM, MONTH, DOW] = FIELDS;

function descriptor(expression: string): Schedule {
  const spec = (dom: FieldSet, month: FieldSet, dow: FieldSet, hour: FieldSet = only(0)): Schedule => ({
    kind: 'spec',
    expression,
    second: only(0),
    minute: only(0),
    hour,
    dom,
    month,
    dow,
  });
  switch (expression) {
    case '@yearly':
    case '@annually':
      return spec(only(1), only(1), all(DOW));
    case '@monthly':
      return spec(only(1), all(MONTH), all(DOW));
    case '@weekly':
      return spec(all(DOM), all(MONTH), only(0));
    case '@daily':
    case '@midnight':
      return spec(all(DOM), all(MONTH), all(DOW));
    case '@hourly':
      return spec(all(DOM), all(MONTH), all(DOW), all(HOUR));
  }
  if (expression.startsWith('@every ')) {
    const text = expression.slice('@every '.length);
    let ns: number;
    try {
      ns = parseGoDuration(text);
    } catch (e) {
      throw new ScheduleError(expression, `@every: ${(e as Error).message}`, 'a Go duration such as 90s, 1h30m or 1.5h (units ns, us, ms, s, m, h)');
    }
    // robfig's Every(): at least one second, whole seconds only.
    const delayMs = Math.max(1000, Math.floor(ns / 1e9) * 1000);
    return { kind: 'every', expression, delayMs };
  }
  throw new ScheduleError(
    expression,
    `unrecognized descriptor "${expression}"`,
    'descriptors are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every <duration> (lower case)',
  );
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
export function parseGoDuration(text: string): number {
  const bad = () => new Error(`invalid duration "${text}"`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s[0] === '-' ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0;
  while (s !== '') {
    // A number (digits, optional fraction) followed by a unit: the whole run of non-digits.
    const m = /^(\d*)(?:\.(\d*))?([^\d.]*)/.exec(s)!;
    if (m[1] === '' && (m[2] ?? '') === '') throw bad();
    if (m[3] === '') throw new Error(`missing unit in duration "${text}"`);
    const unit = DURATION_UNITS[m[3]];
    if (unit === undefined) throw new Error(`unknown unit "${m[3]}" in duration "${text}"`);
    total += Number(`${m[1] || '0'}.${m[2] || '0'}`) * unit;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/** Parses a ScheduledBackup schedule. Throws ScheduleError. */
export function parseSchedule(expression: string): ParsedSchedule {
  if (expression.length === 0) throw new ScheduleError(expression, 'empty schedule', 'for example "0 0 0 * * *" (daily at midnight; the first field is seconds)');
  if (expression[0] === '@') return { schedule: descriptor(expression) };
  const fields = expression.split(/\s+/).filter((f) => f !== '');
  if (fields.length < 5 || fields.length > 6) {
    throw new ScheduleError(
      expression,
      `expected 5 to 6 fields, found ${fields.length}`,
      'fields are: second minute hour day-of-month month [day-of-week], e.g. "0 0 0 * * *" for daily at midnight',
    );
  }
  let warning: string | undefined;
  if (fields.length === 5) {
    warning =
      `schedule "${expression}" has 5 fields: the first is SECONDS (second minute hour day-of-month month, any day of week), ` +
      `not minutes as in Unix cron; CNPG warns about this too. If Unix cron was meant, write "0 ${fields.join(' ')}".`;
    fields.push('*');
  }
  const [second, minute, hour, dom, month, dow] = fields.map((f, i) => parseField(f, FIELDS[i], expression));
  return { schedule: { kind: 'spec', expression, second, minute, hour, dom, month, dow }, warning };
}

function dayMatches(s: Extract<Schedule, { kind: 'spec' }>, t: Date): boolean {
  const domMatch = s.dom.values.has(t.getUTCDate());
  const dowMatch = s.dow.values.has(t.getUTCDay());
  if (s.dom.star || s.dow.star) return domMatch && dowMatch;
  return domMatch || dowMatch;
}

/**
 * The first activation strictly after `after` (robfig's Next, in UTC), or null when there is
 * none within 5 years.
 */
export function next(schedule: Schedule, after: Date): Date | null {
  const wholeSecond = Math.floor(after.getTime() / 1000) * 1000;
  if (schedule.kind === 'every') return new Date(wholeSecond + schedule.delayMs);
  const s = schedule;
  let t = new Date(wholeSecond + 1000);
  let added = false;
  const yearLimit = t.getUTCFullYear() + 5;
  // Go's time.Date / AddDate normalise overflowing fields exactly as Date.UTC does.
  const f = (d: Date) => [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()] as const;
  const date = (y: number, mo: number, d: number, h = 0, mi = 0, sec = 0) => new Date(Date.UTC(y, mo, d, h, mi, sec));

  wrap: for (;;) {
    if (t.getUTCFullYear() > yearLimit) return null;
    while (!s.month.values.has(t.getUTCMonth() + 1)) {
      if (!added) {
        added = true;
        t = date(t.getUTCFullYear(), t.getUTCMonth(), 1);
      }
      const [y, mo, d, h, mi, sec] = f(t);
      t = date(y, mo + 1, d, h, mi, sec);
      if (t.getUTCMonth() === 0) continue wrap;
    }
    while (!dayMatches(s, t)) {
      if (!added) {
        added = true;
        t = date(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
      }
      const [y, mo, d, h, mi, sec] = f(t);
      t = date(y, mo, d + 1, h, mi, sec);
      if (t.getUTCDate() === 1) continue wrap;
    }
    while (!s.hour.values.has(t.getUTCHours())) {
      if (!added) {
        added = true;
        t = date(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate(), t.getUTCHours());
      }
      t = new Date(t.getTime() + 3600_000);
      if (t.getUTCHours() === 0) continue wrap;
    }
    while (!s.minute.values.has(t.getUTCMinutes())) {
      if (!added) {
        added = true;
        t = new Date(Math.floor(t.getTime() / 60_000) * 60_000);
      }
      t = new Date(t.getTime() + 60_000);
      if (t.getUTCMinutes() === 0) continue wrap;
    }
    while (!s.second.values.has(t.getUTCSeconds())) {
      added = true;
      t = new Date(t.getTime() + 1000);
      if (t.getUTCSeconds() === 0) continue wrap;
    }
    return t;
  }
}

/** The next `n` activations after `after` (fewer when the schedule runs out within 5 years). */
export function nextN(schedule: Schedule, after: Date, n: number): Date[] {
  const out: Date[] = [];
  let t: Date | null = after;
  while (out.length < n && (t = next(schedule, t)) !== null) out.push(t);
  return out;
}

/** CNPG's BackupName(t): `<scheduledbackup name>-<YYYYMMDDhhmmss>` of the slot, in UTC. */
export function scheduledBackupName(scheduledBackupName: string, slot: Date): string {
  const compact = slot.toISOString().slice(0, 19).replace(/[-:T]/g, '');
  return `${scheduledBackupName}-${compact}`;
}
