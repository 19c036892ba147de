/**
 * One recoverability computation (src/catalog/recoverability.ts) behind the plugin's Metrics
 * gauges and ObjectStore.status serverRecoveryWindow: both read the same catalog the same way,
 * including the entries where the former separate computations disagreed (a DONE backup without
 * begin_time, a deletion left half done, a FAILED backup that never ended).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DELETION_MARKER } from '../../src/catalog/catalog.js';
import { recoverability } from '../../src/catalog/recoverability.js';
import { recoverabilityOf } from '../../src/plugin/catalog-summary.js';
import { recoveryWindowOf } from '../../src/plugin/recovery-window.js';
import { backupIdAt, syntheticInfo } from '../catalog/synthetic.js';

const at = (iso: string) => new Date(iso);
const info = (end: string, o: { status?: 'DONE' | 'FAILED'; error?: string } = {}) => syntheticInfo({ id: backupIdAt(at(end)), beginSeg: 2, endSeg: 3, endTime: at(end), ...o });

test('Metrics and ObjectStore status report the same points from one catalog', () => {
  const noBegin = { ...info('2026-01-01T00:10:00Z'), begin_time: null };
  const neverEnded = { ...info('2026-01-04T00:10:00Z', { status: 'FAILED' }), end_time: null };
  const backups = [
    noBegin,
    info('2026-01-02T00:10:00Z'),
    info('2026-01-03T00:10:00Z'),
    neverEnded,
    info('2026-01-05T00:10:00Z', { status: 'FAILED', error: `${DELETION_MARKER} (retention)` }),
  ];
  const r = recoverability({ backups });
  // The DONE backup without begin_time is not recoverable (CNPG needs both times); the deletion is not a failure.
  assert.equal(r.firstRecoverabilityPoint, Date.parse('2026-01-02T00:10:00Z'));
  assert.equal(r.lastSuccessfulBackup, Date.parse('2026-01-03T00:10:00Z'));
  assert.equal(r.lastFailedBackup, Date.parse('2026-01-04T00:09:00Z'), 'the start of the failure that never ended');

  assert.deepEqual(recoverabilityOf({ backups }), {
    firstRecoverabilityPoint: Date.parse('2026-01-02T00:10:00Z') / 1000,
    lastAvailableBackup: Date.parse('2026-01-03T00:10:00Z') / 1000,
    lastFailedBackup: Date.parse('2026-01-04T00:09:00Z') / 1000,
  });
  assert.deepEqual(recoveryWindowOf({ backups }), {
    firstRecoverabilityPoint: '2026-01-02T00:10:00Z',
    lastSuccessfulBackupTime: '2026-01-03T00:10:00Z',
    lastFailedBackupTime: '2026-01-04T00:09:00Z',
  });
});

test('an empty catalog has no points', () => {
  assert.deepEqual(recoverability({ backups: [] }), { firstRecoverabilityPoint: undefined, lastSuccessfulBackup: undefined, lastFailedBackup: undefined });
  assert.deepEqual(recoveryWindowOf({ backups: [] }), { firstRecoverabilityPoint: undefined, lastSuccessfulBackupTime: undefined, lastFailedBackupTime: undefined });
});
