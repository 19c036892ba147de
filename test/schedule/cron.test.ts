import { test } from 'node:test';
import assert from 'node:assert/strict';
import { next, nextN, parseGoDuration, parseSchedule, scheduledBackupName, ScheduleError } from '../../src/schedule/cron.js';
import { UserError } from '../../src/util/errors.js';

const Z = (s: string) => new Date(s.endsWith('Z') ? s : `${s}Z`);

// [expression, after, expected next activations] — expectations follow robfig/cron v1.2.0 in UTC.
const CASES: [string, string, string[]][] = [
  // The seed's schedule: daily at midnight (6 fields, seconds first).
  ['0 0 0 * * *', '2024-01-01T00:00:00', ['2024-01-02T00:00:00', '2024-01-03T00:00:00', '2024-01-04T00:00:00']],
  ['0 0 0 * * *', '2024-01-01T23:59:59.500', ['2024-01-02T00:00:00']],
  // Strictly after: an activation exactly at `after` is not returned.
  ['30 * * * * *', '2024-01-01T00:00:30', ['2024-01-01T00:01:30']],
  // Leap days, months without a 31st, year wrap.
  ['0 0 12 29 2 *', '2023-03-01T00:00:00', ['2024-02-29T12:00:00', '2028-02-29T12:00:00', '2032-02-29T12:00:00']],
  ['0 0 0 31 * *', '2024-01-31T00:00:00', ['2024-03-31T00:00:00', '2024-05-31T00:00:00', '2024-07-31T00:00:00']],
  ['0 0 0 1 1 *', '2024-12-31T23:59:59', ['2025-01-01T00:00:00', '2026-01-01T00:00:00']],
  // Day-of-month / day-of-week: both restricted -> either matches (OR).
  ['0 0 0 13 * 5', '2024-09-01T00:00:00', ['2024-09-06T00:00:00', '2024-09-13T00:00:00', '2024-09-20T00:00:00']],
  ['0 0 0 1,15 * mon', '2024-04-01T00:00:00', ['2024-04-08T00:00:00', '2024-04-15T00:00:00', '2024-04-22T00:00:00']],
  // ... one of them * or ? -> both must match (AND), i.e. only the other one counts.
  ['0 0 0 13 * *', '2024-09-01T00:00:00', ['2024-09-13T00:00:00', '2024-10-13T00:00:00', '2024-11-13T00:00:00']],
  ['0 0 0 13 * ?', '2024-09-01T00:00:00', ['2024-09-13T00:00:00', '2024-10-13T00:00:00']],
  ['0 0 0 ? * fri', '2024-09-01T00:00:00', ['2024-09-06T00:00:00', '2024-09-13T00:00:00']],
  // ... and in v1.2.0 a `*/step` field also counts as `*`: the 1st of a month that is Sun/Tue/Thu/Sat.
  ['0 0 0 1 * */2', '2024-01-01T00:00:00', ['2024-02-01T00:00:00', '2024-06-01T00:00:00', '2024-08-01T00:00:00']],
  // Steps, ranges with steps, N/step = N-max/step, lists.
  ['*/15 * * * * *', '2024-01-01T00:00:07', ['2024-01-01T00:00:15', '2024-01-01T00:00:30', '2024-01-01T00:00:45', '2024-01-01T00:01:00']],
  ['0 */15 * * * *', '2024-01-01T10:07:00', ['2024-01-01T10:15:00', '2024-01-01T10:30:00', '2024-01-01T10:45:00', '2024-01-01T11:00:00']],
  ['5/20 * * * * *', '2024-01-01T00:00:00', ['2024-01-01T00:00:05', '2024-01-01T00:00:25', '2024-01-01T00:00:45', '2024-01-01T00:01:05']],
  ['0 0 8-18/5 * * *', '2024-01-01T00:00:00', ['2024-01-01T08:00:00', '2024-01-01T13:00:00', '2024-01-01T18:00:00', '2024-01-02T08:00:00']],
  ['0 0,30 9,17 * * *', '2024-01-01T09:00:00', ['2024-01-01T09:30:00', '2024-01-01T17:00:00', '2024-01-01T17:30:00']],
  // Month and weekday names, case-insensitive; wraps to the next year when the months run out.
  ['0 30 9 * jan-mar mon-fri', '2024-03-29T10:00:00', ['2025-01-01T09:30:00', '2025-01-02T09:30:00', '2025-01-03T09:30:00']],
  ['0 0 0 * JAN,Jul SUN', '2024-01-01T00:00:00', ['2024-01-07T00:00:00', '2024-01-14T00:00:00', '2024-01-21T00:00:00']],
  // 5 fields: seconds minute hour dom month (hourly here, not daily as in Unix cron).
  ['0 0 * * *', '2024-01-01T00:00:00', ['2024-01-01T01:00:00', '2024-01-01T02:00:00']],
  // Descriptors.
  ['@yearly', '2024-06-01T00:00:00', ['2025-01-01T00:00:00', '2026-01-01T00:00:00']],
  ['@annually', '2024-06-01T00:00:00', ['2025-01-01T00:00:00']],
  ['@monthly', '2024-01-31T12:00:00', ['2024-02-01T00:00:00', '2024-03-01T00:00:00']],
  ['@weekly', '2024-01-01T00:00:00', ['2024-01-07T00:00:00', '2024-01-14T00:00:00']],
  ['@daily', '2024-02-28T01:00:00', ['2024-02-29T00:00:00', '2024-03-01T00:00:00']],
  ['@midnight', '2024-02-28T01:00:00', ['2024-02-29T00:00:00']],
  ['@hourly', '2024-01-01T10:30:00', ['2024-01-01T11:00:00', '2024-01-01T12:00:00']],
  // @every: from the whole second of `after`, whole seconds, at least one second.
  ['@every 90s', '2024-01-01T00:00:00.700', ['2024-01-01T00:01:30', '2024-01-01T00:03:00', '2024-01-01T00:04:30']],
  ['@every 1h30m', '2024-01-01T00:00:00', ['2024-01-01T01:30:00', '2024-01-01T03:00:00']],
  ['@every 1.5s', '2024-01-01T00:00:00', ['2024-01-01T00:00:01', '2024-01-01T00:00:02']],
  ['@every 500ms', '2024-01-01T00:00:00', ['2024-01-01T00:00:01', '2024-01-01T00:00:02']],
  // Nothing within 5 years: robfig gives up (zero time).
  ['0 0 0 30 2 *', '2024-01-01T00:00:00', []],
];

test('next activations match robfig/cron v1.2.0 for a table of schedules', () => {
  for (const [expr, after, expected] of CASES) {
    const { schedule } = parseSchedule(expr);
    const n = expected.length || 3;
    assert.deepEqual(
      nextN(schedule, Z(after), n).map((d) => d.toISOString()),
      expected.map((e) => Z(e).toISOString()),
      `${expr} after ${after}`,
    );
  }
  assert.equal(next(parseSchedule('0 0 0 30 2 *').schedule, Z('2024-01-01T00:00:00')), null);
});

test('5-field schedules are accepted with a warning that the first field is seconds', () => {
  const parsed = parseSchedule('0 30 2 * *');
  assert.match(parsed.warning!, /has 5 fields: the first is SECONDS/);
  assert.match(parsed.warning!, /write "0 0 30 2 \* \*"/);
  assert.equal(parseSchedule('0 0 0 * * *').warning, undefined);
  assert.equal(parseSchedule('@daily').warning, undefined);
});

const INVALID: [string, RegExp, RegExp?][] = [
  ['0 0 0 * * 7', /day-of-week field "7": 7 is above the maximum \(6\)/, /Sunday is 0/],
  ['0 0 0 * * 1-7', /day-of-week field "1-7": 7 is above the maximum \(6\)/, /use 0 or sun/],
  ['0 0 0 0 * *', /day-of-month field "0": beginning of range \(0\) below minimum \(1\)/, /day-of-month allows 1-31/],
  ['60 0 0 * * *', /second field "60": end of range \(60\) above maximum \(59\)/, /second allows 0-59/],
  ['0 0 24 * * *', /hour field "24": end of range \(24\) above maximum \(23\)/],
  ['0 0 0 * 13 *', /month field "13": end of range \(13\) above maximum \(12\)/, /jan-dec \(case-insensitive\)/],
  ['0 0 0 * * Sat-sun', /day-of-week field "Sat-sun": beginning of range \(6\) beyond end of range \(0\)/],
  ['0 0 5-3 * * *', /hour field "5-3": beginning of range \(5\) beyond end of range \(3\)/],
  ['0 0 1-2-3 * * *', /hour field "1-2-3": too many hyphens/],
  ['*/2/3 * * * * *', /second field "\*\/2\/3": too many slashes/],
  ['0 0 0 */0 * *', /day-of-month field "\*\/0": step must be a positive number/],
  ['0 0 0 L * *', /day-of-month field "L": "L" is not a number/],
  ['0 0 0 * foo *', /month field "foo": "foo" is not a number or a name \(jan, feb/],
  ['0 0 0 * * 1#2', /day-of-week field "1#2": "1#2" is not a number/],
  ['0 0 *', /expected 5 to 6 fields, found 3/, /second minute hour day-of-month month \[day-of-week\]/],
  ['0 0 0 * * * 2024', /expected 5 to 6 fields, found 7/],
  ['', /empty schedule/],
  ['@Daily', /unrecognized descriptor "@Daily"/, /lower case/],
  ['@every', /unrecognized descriptor "@every"/],
  ['@every 5x', /@every: unknown unit "x" in duration "5x"/, /Go duration/],
  ['@every 10', /@every: missing unit in duration "10"/],
  ['@every ', /@every: invalid duration ""/],
];

test('invalid schedules give a clear error naming the field and the allowed range (exit code 2)', () => {
  for (const [expr, message, hint] of INVALID) {
    assert.throws(
      () => parseSchedule(expr),
      (e: unknown) => {
        assert.ok(e instanceof ScheduleError && e instanceof UserError && e.exitCode === 2, `${expr}: ${String(e)}`);
        assert.ok(e.message.startsWith(`invalid schedule "${expr}": `), e.message);
        assert.match(e.message, message, expr);
        if (hint) assert.match(e.hint ?? '', hint, expr);
        return true;
      },
      expr,
    );
  }
});

test('Go durations for @every', () => {
  assert.equal(parseGoDuration('90s'), 90e9);
  assert.equal(parseGoDuration('1h30m'), 5400e9);
  assert.equal(parseGoDuration('1.5h'), 5400e9);
  assert.equal(parseGoDuration('300ms'), 300e6);
  assert.equal(parseGoDuration('2us'), 2000);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('-1m'), -60e9);
  assert.throws(() => parseGoDuration('1d'), /unknown unit "d"/);
  assert.throws(() => parseGoDuration('.s'), /invalid duration/);
});

test('scheduled backup names are <name>-<YYYYMMDDhhmmss> of the slot in UTC', () => {
  assert.equal(scheduledBackupName('backup-example', Z('2024-01-02T03:04:05.678')), 'backup-example-20240102030405');
  const slot = next(parseSchedule('0 0 0 * * *').schedule, Z('2024-02-28T12:00:00'))!;
  assert.equal(scheduledBackupName('nightly', slot), 'nightly-20240229000000');
});
