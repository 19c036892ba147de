import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeWindow, historyPath, type ArchiveInventory } from '../../src/recovery/wal-window.js';
import type { RecoveryBackup } from '../../src/recovery/select-backup.js';
import { parseLsn } from '../../src/pg/lsn.js';
import { UserError } from '../../src/util/errors.js';

const SEG = 16 * 1024 * 1024;

function inventory(segments: Record<number, number[]>): ArchiveInventory {
  const inv: ArchiveInventory = { segments: new Map(), histories: new Map() };
  for (const [tl, nums] of Object.entries(segments)) {
    inv.segments.set(Number(tl), new Map(nums.map((n) => [n, { key: `k${tl}-${n}`, size: SEG, lastModified: new Date(1_700_000_000_000 + n * 1000) }])));
  }
  return inv;
}

const backup: RecoveryBackup = {
  backupId: '20240101T000000',
  status: 'DONE',
  beginLsn: parseLsn('0/2000028'),
  endLsn: parseLsn('0/3000100'),
  beginWal: '000000010000000000000002',
  endWal: '000000010000000000000003',
  timeline: 1,
  segmentSize: SEG,
  tablespaces: [],
};

test('contiguous archive: window runs to the last segment', () => {
  const w = computeWindow(inventory({ 1: [1, 2, 3, 4, 5] }), backup, [{ timeline: 1, begin: 0n }]);
  assert.equal(w.firstSegment, '000000010000000000000002');
  assert.equal(w.lastSegment, '000000010000000000000005');
  assert.equal(w.segmentsToReplay, 4);
  assert.equal(w.coversBackupEnd, true);
  assert.equal(w.latestLsn, parseLsn('0/6000000'));
  assert.equal(w.gapAt, undefined);
});

test('a gap stops the window and is reported', () => {
  const w = computeWindow(inventory({ 1: [2, 3, 4, 6, 7] }), backup, [{ timeline: 1, begin: 0n }]);
  assert.equal(w.lastSegment, '000000010000000000000004');
  assert.equal(w.gapAt, '000000010000000000000005');
});

test('begin_wal missing, or a gap before end_wal', () => {
  const none = computeWindow(inventory({ 1: [3, 4] }), backup, [{ timeline: 1, begin: 0n }]);
  assert.equal(none.lastSegment, undefined);
  assert.equal(none.gapAt, '000000010000000000000002');
  const short = computeWindow(inventory({ 1: [2] }), backup, [{ timeline: 1, begin: 0n }]);
  assert.equal(short.coversBackupEnd, false);
});

test('timeline switch: the segment holding the switch point comes from the child timeline', () => {
  const path = historyPath('1\t0/4000A00\tno recovery target specified\n', 2);
  assert.deepEqual(path, [
    { timeline: 1, begin: 0n },
    { timeline: 2, begin: parseLsn('0/4000A00') },
  ]);
  const w = computeWindow(inventory({ 1: [2, 3, 4], 2: [4, 5, 6] }), backup, path);
  assert.equal(w.lastSegment, '000000020000000000000006');
  assert.equal(w.segmentsToReplay, 5);
  const missingChild = computeWindow(inventory({ 1: [2, 3, 4, 5] }), backup, path);
  assert.equal(missingChild.lastSegment, '000000010000000000000003');
});

test('a backup that is not in the target timeline history is refused', () => {
  const onTwo = { ...backup, timeline: 2 };
  assert.throws(() => computeWindow(inventory({ 2: [2, 3] }), onTwo, [{ timeline: 1, begin: 0n }]), UserError);
  const path = historyPath('1\t0/2800000\treason\n', 2);
  // Timeline 2 branched off before this backup (on 1) ended: replaying it to 2 is impossible.
  assert.throws(() => computeWindow(inventory({ 1: [2, 3] }), backup, path), (e: unknown) => e instanceof UserError && /not in the history of timeline 2/.test(e.message));
});
