process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetentionPolicy, planRetention, type RetentionPlan, type WalObject } from '../../src/catalog/retention.js';
import { DELETION_MARKER, type KeepTarget } from '../../src/catalog/catalog.js';
import { walKey } from '../../src/catalog/layout.js';
import { DAY, segments, syntheticInfo, walName, type SyntheticBackup } from './synthetic.js';

const NOW = new Date(Date.UTC(2024, 5, 30, 12, 0, 0));
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);

function wals(names: string[], ext = '.gz'): WalObject[] {
  return names.map((name) => ({ key: walKey('pg', name, name.endsWith('.history') ? '' : ext), name, size: 100 }));
}

function plan(backups: SyntheticBackup[], walNames: string[], policy = '30d', keep?: Map<string, KeepTarget>): RetentionPlan {
  return planRetention({ serverName: 'pg', backups: backups.map(syntheticInfo), wals: wals(walNames), policy, now: NOW, keep });
}

const decisions = (p: RetentionPlan) => Object.fromEntries(p.backups.map((b) => [b.backupId, b.decision]));
const deletedWal = (p: RetentionPlan) => p.steps.flatMap((s) => s.walKeys).map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.gz$/, ''));

test('policy syntax: Nd, Nw, Nm (31-day months) and clear errors', () => {
  assert.deepEqual(parseRetentionPolicy('30d'), { kind: 'window', text: '30d', value: 30, unit: 'd', days: 30, barman: 'RECOVERY WINDOW OF 30 DAYS', minimumRedundancy: 0 });
  assert.equal(parseRetentionPolicy('4w').days, 28);
  assert.equal(parseRetentionPolicy('2m').days, 62);
  assert.equal(parseRetentionPolicy('2m').barman, 'RECOVERY WINDOW OF 2 MONTHS');
  for (const bad of ['0d', '30', 'd', '30 days', '3y', '-1d', '1.5d']) {
    assert.throws(() => parseRetentionPolicy(bad), /invalid retentionPolicy .*expected a number of days, weeks or months/, bad);
  }
});

test('one timeline: keep the window plus the newest backup ending before it; delete older backups and their WAL', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240501T000000', beginSeg: 2, endSeg: 3, endTime: daysAgo(60) },
    { id: '20240515T000000', beginSeg: 6, endSeg: 6, endTime: daysAgo(45) },
    { id: '20240525T000000', beginSeg: 9, endSeg: 10, endTime: daysAgo(35) },
    { id: '20240610T000000', beginSeg: 13, endSeg: 13, endTime: daysAgo(20) },
    { id: '20240625T000000', beginSeg: 16, endSeg: 16, endTime: daysAgo(5) },
  ];
  const names = [...segments(1, 1, 18), `${walName(1, 6)}.00000028.backup`, `${walName(1, 9)}.00000028.backup`];
  const p = plan(backups, names);
  assert.deepEqual(decisions(p), {
    '20240501T000000': 'delete',
    '20240515T000000': 'delete',
    '20240525T000000': 'keep',
    '20240610T000000': 'keep',
    '20240625T000000': 'keep',
  });
  assert.match(p.backups[2].reason, /newest backup ending before the window start/);
  assert.match(p.backups[3].reason, /inside the recovery window/);
  // First deletion frees WAL < begin of the 2nd backup, the second < begin of the 3rd (kept) backup.
  assert.deepEqual(p.steps.map((s) => s.backupId), ['20240501T000000', '20240515T000000']);
  assert.deepEqual(deletedWal(p), [...segments(1, 1, 5), ...segments(1, 6, 8), `${walName(1, 6)}.00000028.backup`].sort());
  assert.deepEqual(p.walRanges, [{ timeline: '00000001', first: walName(1, 1), last: walName(1, 8), files: 9, bytes: 900 }]);
  assert.equal(p.walFilesDeleted, 9);
  assert.equal(p.firstRecoverabilityBefore!.toISOString(), daysAgo(60).toISOString());
  assert.equal(p.firstRecoverabilityAfter!.toISOString(), daysAgo(35).toISOString());
  assert.equal(p.pointOfRecoverability?.toISOString(), daysAgo(30).toISOString());
});

test('window boundary: end_time equal to the point of recoverability is not before it; months are 31 days', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240401T000000', beginSeg: 1, endSeg: 1, endTime: daysAgo(40) },
    { id: '20240501T000000', beginSeg: 3, endSeg: 3, endTime: daysAgo(31) },
    { id: '20240601T000000', beginSeg: 5, endSeg: 5, endTime: daysAgo(30) },
  ];
  // 30d: the 30-days-ago backup ends exactly at the PoR (not before): keep it and the next older one.
  assert.deepEqual(decisions(plan(backups, [])), { '20240401T000000': 'delete', '20240501T000000': 'keep', '20240601T000000': 'keep' });
  // 1m = 31 days (30 would delete the 40-days-ago backup): the 31-days-ago backup ends exactly at
  // the PoR, so the 40-days-ago one is the base and nothing goes.
  assert.deepEqual(decisions(plan(backups, [], '1m')), { '20240401T000000': 'keep', '20240501T000000': 'keep', '20240601T000000': 'keep' });
  // 4w = 28 days: the 30-days-ago backup is the base; both older ones go.
  assert.deepEqual(decisions(plan(backups, [], '4w')), { '20240401T000000': 'delete', '20240501T000000': 'delete', '20240601T000000': 'keep' });
  // Nothing before the window at all: everything kept.
  assert.deepEqual(Object.values(decisions(plan(backups, [], '60d'))), ['keep', 'keep', 'keep']);
});

test('several timelines: WAL of timelines that still hold backups (the deleted one included) is protected; history files never deleted', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240401T000000', timeline: 1, beginSeg: 2, endSeg: 2, endTime: daysAgo(80) },
    { id: '20240420T000000', timeline: 1, beginSeg: 6, endSeg: 6, endTime: daysAgo(70) },
    { id: '20240501T000000', timeline: 2, beginSeg: 9, endSeg: 9, endTime: daysAgo(60) },
    { id: '20240601T000000', timeline: 3, beginSeg: 12, endSeg: 12, endTime: daysAgo(50) },
    { id: '20240620T000000', timeline: 3, beginSeg: 14, endSeg: 14, endTime: daysAgo(10) },
  ];
  const names = [
    ...segments(1, 1, 8),
    '00000002.history',
    ...segments(2, 8, 11),
    `${walName(2, 10)}.partial`,
    '00000003.history',
    ...segments(3, 11, 15),
  ];
  const p = plan(backups, names);
  assert.deepEqual(decisions(p), {
    '20240401T000000': 'delete',
    '20240420T000000': 'delete',
    '20240501T000000': 'delete',
    '20240601T000000': 'keep',
    '20240620T000000': 'keep',
  });
  const [first, second, third] = p.steps.map((s) => s.walKeys.map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.gz$/, '')));
  // 1st: remove_until = 2nd backup (TL1); TL2 and TL3 hold backups: only TL1 below segment 6.
  assert.deepEqual(first, segments(1, 1, 5));
  // 2nd: remove_until = 3rd backup (TL2); TL3 and the deleted backup's own TL1 are protected (barman
  // never recognises the deleted backup in its catalog): only TL2 below segment 9.
  assert.deepEqual(second, segments(2, 8, 8));
  // 3rd: remove_until = 4th backup (TL3); TL2 (the deleted one's) protected; TL1 is free now, and TL3 below 0C.
  assert.deepEqual(third, [...segments(1, 6, 8), ...segments(3, 11, 11)]);
  assert.ok(!deletedWal(p).some((n) => n.endsWith('.history')));
  assert.deepEqual(
    p.walRanges.map((r) => [r.timeline, r.first, r.last, r.files]),
    [
      ['00000001', walName(1, 1), walName(1, 8), 8],
      ['00000002', walName(2, 8), walName(2, 8), 1],
      ['00000003', walName(3, 11), walName(3, 11), 1],
    ],
  );
});

test('FAILED backups are never deleted, are not a "previous backup", but their timeline protects WAL', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240301T000000', timeline: 1, beginSeg: 1, endSeg: 1, endTime: daysAgo(100), status: 'FAILED' },
    { id: '20240401T000000', timeline: 2, beginSeg: 3, endSeg: 3, endTime: daysAgo(80) },
    { id: '20240501T000000', timeline: 2, beginSeg: 6, endSeg: 6, endTime: daysAgo(60) },
    { id: '20240502T000000', timeline: 2, beginSeg: 7, endSeg: 7, endTime: daysAgo(59), status: 'FAILED' },
    { id: '20240610T000000', timeline: 2, beginSeg: 9, endSeg: 9, endTime: daysAgo(20) },
  ];
  const names = [...segments(1, 1, 2), '00000002.history', ...segments(2, 2, 10)];
  const p = plan(backups, names);
  assert.deepEqual(decisions(p), {
    '20240301T000000': 'ignore',
    '20240401T000000': 'delete',
    '20240501T000000': 'keep',
    '20240502T000000': 'ignore',
    '20240610T000000': 'keep',
  });
  assert.match(p.backups[0].reason, /status FAILED: retention deletes DONE backups only/);
  // The FAILED TL1 backup protects TL1's WAL; TL2 below the next DONE backup's begin goes.
  assert.deepEqual(deletedWal(p), segments(2, 2, 5));
});

test('keep annotations: full keeps and blocks WAL cleanup of newer obsolete backups; standalone protects its range', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240301T000000', beginSeg: 2, endSeg: 3, endTime: daysAgo(100) },
    { id: '20240401T000000', beginSeg: 6, endSeg: 6, endTime: daysAgo(80) },
    { id: '20240501T000000', beginSeg: 9, endSeg: 9, endTime: daysAgo(60) },
    { id: '20240610T000000', beginSeg: 12, endSeg: 12, endTime: daysAgo(20) },
  ];
  const names = segments(1, 1, 13);
  const full = plan(backups, names, '30d', new Map([['20240301T000000', 'full']]));
  assert.deepEqual(decisions(full), { '20240301T000000': 'keep', '20240401T000000': 'delete', '20240501T000000': 'keep', '20240610T000000': 'keep' });
  assert.match(full.backups[0].reason, /keep:full annotation/);
  assert.deepEqual(deletedWal(full), [], 'the keep:full backup needs every WAL after it');

  const standalone = plan(backups, names, '30d', new Map([['20240301T000000', 'standalone']]));
  assert.equal(decisions(standalone)['20240301T000000'], 'keep');
  assert.deepEqual(deletedWal(standalone), [walName(1, 1), ...segments(1, 4, 8)], 'keeps 2..3 (its range), deletes the rest below the next backup');
});

test('an interrupted deletion is finished; unreadable backup.info blocks the plan', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240301T000000', beginSeg: 2, endSeg: 2, endTime: daysAgo(100), status: 'FAILED', error: `${DELETION_MARKER} since 2024-06-01T00:00:00+00:00 (was DONE)` },
    { id: '20240610T000000', beginSeg: 5, endSeg: 5, endTime: daysAgo(20) },
  ];
  const p = plan(backups, segments(1, 1, 6));
  assert.deepEqual(decisions(p), { '20240301T000000': 'finish-deletion', '20240610T000000': 'keep' });
  assert.deepEqual(deletedWal(p), segments(1, 1, 4));
  assert.deepEqual(p.blockedBy, []);
  const blocked = planRetention({
    serverName: 'pg',
    backups: backups.map(syntheticInfo),
    wals: [],
    policy: '30d',
    now: NOW,
    unreadable: [{ backupId: '20240401T000000', error: 'bad' }],
  });
  assert.deepEqual(blocked.blockedBy, [{ backupId: '20240401T000000', error: 'bad' }]);
});

test('bytes freed counts backup objects and WAL', () => {
  const backups: SyntheticBackup[] = [
    { id: '20240301T000000', beginSeg: 2, endSeg: 2, endTime: daysAgo(100) },
    { id: '20240401T000000', beginSeg: 4, endSeg: 4, endTime: daysAgo(80) },
    { id: '20240610T000000', beginSeg: 6, endSeg: 6, endTime: daysAgo(20) },
  ];
  const objects = new Map(backups.map((b) => [b.id, [{ key: `pg/base/${b.id}/data.tar`, size: 5000 }, { key: `pg/base/${b.id}/backup.info`, size: 700 }]]));
  const p = planRetention({ serverName: 'pg', backups: backups.map(syntheticInfo), wals: wals(segments(1, 1, 7)), policy: '30d', now: NOW, objects });
  assert.deepEqual(decisions(p), { '20240301T000000': 'delete', '20240401T000000': 'keep', '20240610T000000': 'keep' });
  assert.equal(p.backups[0].bytes, 5700);
  assert.equal(p.bytesFreed, 5700 + 3 * 100);
});
