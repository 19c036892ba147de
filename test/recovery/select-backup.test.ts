import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackup, type RecoveryBackup } from '../../src/recovery/select-backup.js';
import { parseRecoveryTarget } from '../../src/recovery/target.js';
import { parseLsn } from '../../src/pg/lsn.js';
import { UserError } from '../../src/util/errors.js';

function backup(id: string, status: string, end: string, endLsn: string, timeline = 1): RecoveryBackup {
  return {
    backupId: id,
    status,
    beginTime: new Date(new Date(end).getTime() - 60_000),
    endTime: new Date(end),
    endLsn: parseLsn(endLsn),
    timeline,
    segmentSize: 16 * 1024 * 1024,
    tablespaces: [],
  };
}

const catalog = [
  backup('20240101T000000', 'DONE', '2024-01-01T00:10:00Z', '0/5000000'),
  backup('20240102T000000', 'DONE', '2024-01-02T00:10:00Z', '0/9000000'),
  backup('20240103T000000', 'FAILED', '2024-01-03T00:10:00Z', '0/C000000'),
  backup('20240104T000000', 'DONE', '2024-01-04T00:10:00Z', '0/F000000', 2),
];
const where = 'file:///x server "a"';
const pick = (rt: Parameters<typeof parseRecoveryTarget>[0]) => selectBackup(catalog, parseRecoveryTarget(rt), rt !== undefined, where).backup.backupId;

test('no recoveryTarget: newest DONE backup on any timeline', () => {
  assert.equal(pick(undefined), '20240104T000000');
});

test('backupID wins, and must be DONE', () => {
  assert.equal(pick({ backupID: '20240101T000000', targetTime: '2024-01-04T00:00:00Z' }), '20240101T000000');
  assert.throws(() => pick({ backupID: '20240103T000000' }), (e: unknown) => e instanceof UserError && /FAILED/.test(e.message));
  assert.throws(() => pick({ backupID: '20991231T000000' }), (e: unknown) => e instanceof UserError && /20240102T000000/.test(e.hint ?? ''));
});

test('targetTime: newest DONE backup that ended at or before it, FAILED ones skipped', () => {
  assert.equal(pick({ targetTime: '2024-01-03T12:00:00Z' }), '20240102T000000');
  assert.equal(pick({ targetTime: '2024-01-02T00:10:00Z' }), '20240102T000000');
  assert.equal(pick({ targetTime: '2024-01-02T00:09:59Z' }), '20240101T000000');
  assert.equal(pick({ targetTime: '2024-01-05 00:00:00' }), '20240104T000000');
});

test('targetTime on a numbered timeline only considers backups of that timeline', () => {
  assert.equal(pick({ targetTime: '2024-01-05T00:00:00Z', targetTLI: '1' }), '20240102T000000');
  assert.equal(pick({ targetTime: '2024-01-05T00:00:00Z', targetTLI: 'latest' }), '20240104T000000');
  assert.equal(pick({ targetTLI: '1' }), '20240102T000000');
});

test('targetLSN: newest DONE backup whose end LSN is before it', () => {
  assert.equal(pick({ targetLSN: '0/9000001' }), '20240102T000000');
  assert.equal(pick({ targetLSN: '0/9000000' }), '20240101T000000');
});

test('nothing before the target: the error lists what exists', () => {
  assert.throws(
    () => pick({ targetTime: '2023-12-31T00:00:00Z' }),
    (e: unknown) => e instanceof UserError && /no DONE backup/.test(e.message) && /20240101T000000 DONE/.test(e.hint ?? '') && /20240103T000000 FAILED/.test(e.hint ?? ''),
  );
  assert.throws(() => selectBackup([], parseRecoveryTarget(undefined), false, where), (e: unknown) => e instanceof UserError && /no backups/.test(e.hint ?? ''));
});
