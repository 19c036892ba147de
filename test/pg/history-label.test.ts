import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHistoryFile, timelineAtLsn } from '../../src/pg/history.js';
import { parseBackupLabel } from '../../src/pg/backup-label.js';
import { parseLsn } from '../../src/pg/lsn.js';
import { UserError } from '../../src/util/errors.js';

test('a timeline history file parses into ordered switchpoints', () => {
  const text = '1\t0/3000160\tno recovery target specified\n\n# comment\n2\t0/5000000\tbefore 2024-01-02 03:04:05+00\n3\t1/0\t\n';
  const h = parseHistoryFile(text, '00000004.history');
  assert.deepEqual(h, [
    { timeline: 1, switchpoint: parseLsn('0/3000160'), reason: 'no recovery target specified' },
    { timeline: 2, switchpoint: parseLsn('0/5000000'), reason: 'before 2024-01-02 03:04:05+00' },
    { timeline: 3, switchpoint: parseLsn('1/0'), reason: '' },
  ]);
  assert.equal(timelineAtLsn(h, 4, parseLsn('0/100')), 1);
  assert.equal(timelineAtLsn(h, 4, parseLsn('0/3000160')), 2);
  assert.equal(timelineAtLsn(h, 4, parseLsn('0/FFFFFFFF')), 3);
  assert.equal(timelineAtLsn(h, 4, parseLsn('1/0')), 4);
  assert.deepEqual(parseHistoryFile(''), []);
});

test('malformed history files are rejected with the line number', () => {
  const cases: [string, RegExp][] = [
    ['1 0/3000160 reason\nbanana\n', /line 2/],
    ['1\tZ/1\tx\n', /line 1/],
    ['2\t0/5\tx\n1\t0/6\tx\n', /line 2: timeline 1 does not follow 2/],
    ['1\t0/6\tx\n2\t0/5\tx\n', /line 2: switchpoint/],
    ['0\t0/6\tx\n', /line 1: timeline 0/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseHistoryFile(text, 'h'), (e: unknown) => e instanceof UserError && re.test(e.message), text);
});

const LABEL =
  'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2024-01-02 03:04:05 UTC\nLABEL: Barman backup cloud 20240102T030405\nSTART TIMELINE: 1\n';

test('a backup_label parses into typed fields', () => {
  assert.deepEqual(parseBackupLabel(LABEL), {
    startLsn: parseLsn('0/6000028'),
    startWalFile: '000000010000000000000006',
    checkpointLsn: parseLsn('0/6000060'),
    backupMethod: 'streamed',
    backupFrom: 'primary',
    startTime: '2024-01-02 03:04:05 UTC',
    label: 'Barman backup cloud 20240102T030405',
    startTimeline: 1,
    other: {},
  });
});

test('PostgreSQL 17 incremental fields, labels with ": " inside, and unknown lines', () => {
  const l = parseBackupLabel(
    'START WAL LOCATION: 0/9000028 (file 000000020000000000000009)\r\nCHECKPOINT LOCATION: 0/9000080\nLABEL: nightly: full\nSTART TIMELINE: 2\nINCREMENTAL FROM LSN: 0/7000028\nINCREMENTAL FROM TLI: 1\nFUTURE FIELD: x\n',
  );
  assert.equal(l.label, 'nightly: full');
  assert.equal(l.incrementalFromLsn, parseLsn('0/7000028'));
  assert.equal(l.incrementalFromTimeline, 1);
  assert.deepEqual(l.other, { 'FUTURE FIELD': 'x' });
  assert.equal(l.backupMethod, undefined);
});

test('bad backup_label files are rejected', () => {
  assert.throws(() => parseBackupLabel('CHECKPOINT LOCATION: 0/1\n'), /no "START WAL LOCATION:" line/);
  assert.throws(() => parseBackupLabel(LABEL.replace('CHECKPOINT LOCATION: 0/6000060\n', '')), /CHECKPOINT LOCATION/);
  assert.throws(() => parseBackupLabel(LABEL.replace('0/6000028 (file', '0/6000028 (segment')), /expected "LSN \(file WALNAME\)"/);
  assert.throws(() => parseBackupLabel(LABEL.replace('START TIMELINE: 1', 'START TIMELINE: 2')), /disagrees/);
  assert.throws(() => parseBackupLabel(LABEL.replace('START TIMELINE: 1', 'START TIMELINE: one')), /not a number/);
  assert.throws(() => parseBackupLabel(LABEL.replace('CHECKPOINT LOCATION: 0/6000060', 'CHECKPOINT LOCATION: zz')), UserError);
  assert.throws(() => parseBackupLabel('garbage without colon\n'), /line 1/);
});
