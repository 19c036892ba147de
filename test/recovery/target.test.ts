import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecoveryTarget, parseTargetTime, postgresTargetTime, recoveryTargetSettings } from '../../src/recovery/target.js';
import { imageMajor, checkImageMajor } from '../../src/recovery/versions.js';
import { UserError } from '../../src/util/errors.js';

test('targetTime: every CNPG form parses to the same instant', () => {
  const want = Date.UTC(2024, 4, 1, 12, 30, 15, 250);
  for (const form of [
    '2024-05-01 12:30:15.25',
    '2024-05-01 12:30:15.250000+00',
    '2024-05-01 14:30:15.25+02:00',
    '2024-05-01 10:30:15.25-02',
    '2024-05-01T12:30:15.25Z',
    '2024-05-01T12:30:15.250000Z',
    '2024-05-01T13:30:15.25+01:00',
  ]) {
    assert.equal(parseTargetTime(form).getTime(), want, form);
  }
  assert.equal(parseTargetTime('2024-05-01T12:30:15').getTime(), Date.UTC(2024, 4, 1, 12, 30, 15));
  assert.throws(() => parseTargetTime('yesterday'), RangeError);
});

test('targetTime is rendered as CNPG ConvertToPostgresFormat does', () => {
  assert.equal(postgresTargetTime('2024-05-01T12:30:15Z'), '2024-05-01 12:30:15.000000+00:00');
  assert.equal(postgresTargetTime('2024-05-01T12:30:15.123Z'), '2024-05-01 12:30:15.123000+00:00');
  assert.equal(postgresTargetTime('2024-05-01T12:30:15.123456+02:00'), '2024-05-01 12:30:15.123456+02:00');
  assert.equal(postgresTargetTime('2024-05-01T12:30:15'), '2024-05-01 12:30:15');
  assert.equal(postgresTargetTime('2024-05-01 12:30:15.5+02'), '2024-05-01 12:30:15.5+02');
});

test('recovery settings follow CNPG BuildPostgresOptions, inclusive always written', () => {
  assert.deepEqual(recoveryTargetSettings(undefined), []);
  assert.deepEqual(recoveryTargetSettings({ backupID: '20240101T000000' }), [['recovery_target_inclusive', 'true']]);
  assert.deepEqual(recoveryTargetSettings({ targetTLI: 'latest', targetTime: '2024-05-01T12:30:15Z', exclusive: true }), [
    ['recovery_target_timeline', 'latest'],
    ['recovery_target_time', '2024-05-01 12:30:15.000000+00:00'],
    ['recovery_target_inclusive', 'false'],
  ]);
  assert.deepEqual(recoveryTargetSettings({ backupID: 'x', targetImmediate: true }), [
    ['recovery_target', 'immediate'],
    ['recovery_target_inclusive', 'true'],
  ]);
  assert.deepEqual(recoveryTargetSettings({ targetLSN: '0/3000060' }), [
    ['recovery_target_lsn', '0/3000060'],
    ['recovery_target_inclusive', 'true'],
  ]);
  assert.deepEqual(recoveryTargetSettings({ backupID: 'x', targetXID: '745', targetTLI: '2' }), [
    ['recovery_target_timeline', '2'],
    ['recovery_target_xid', '745'],
    ['recovery_target_inclusive', 'true'],
  ]);
  assert.deepEqual(recoveryTargetSettings({ backupID: 'x', targetName: 'before-migration' }), [
    ['recovery_target_name', 'before-migration'],
    ['recovery_target_inclusive', 'true'],
  ]);
});

test('parsed targets carry kind, timeline and LSN', () => {
  assert.equal(parseRecoveryTarget(undefined).kind, 'end-of-archive');
  const lsn = parseRecoveryTarget({ targetLSN: '1/A0', targetTLI: '3' });
  assert.equal(lsn.kind, 'lsn');
  assert.equal(lsn.lsn, (1n << 32n) + 0xa0n);
  assert.equal(lsn.timeline, 3);
  assert.equal(parseRecoveryTarget({ targetTime: '2024-05-01T12:30:15Z', targetTLI: 'latest' }).timeline, 'latest');
  assert.equal(parseRecoveryTarget({ backupID: 'x', targetImmediate: true, exclusive: true }).exclusive, true);
});

test('imageName tag major, and the refusal names both versions', () => {
  assert.equal(imageMajor('ghcr.io/cloudnative-pg/postgresql:16'), 16);
  assert.equal(imageMajor('ghcr.io/cloudnative-pg/postgresql:15.4-bookworm'), 15);
  assert.equal(imageMajor('localhost:5000/postgresql:17-standard'), 17);
  assert.equal(imageMajor('localhost:5000/postgresql'), undefined);
  assert.equal(imageMajor('ghcr.io/cloudnative-pg/postgresql@sha256:abcd'), undefined);
  assert.equal(imageMajor('ghcr.io/cloudnative-pg/postgresql:latest'), undefined);
  assert.doesNotThrow(() => checkImageMajor('ghcr.io/cloudnative-pg/postgresql:15', 15, 'b'));
  assert.throws(
    () => checkImageMajor('ghcr.io/cloudnative-pg/postgresql:16', 15, '20240101T000000'),
    (e: unknown) => e instanceof UserError && /PostgreSQL 16/.test(e.message) && /PostgreSQL 15/.test(e.message) && e.exitCode === 2,
  );
});
