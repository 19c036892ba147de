import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLsn } from '../../src/pg/lsn.js';
import {
  backupHistoryFileName,
  classifyWalName,
  compareWalNames,
  historyFileName,
  nextSegment,
  parseSegmentName,
  parseWalName,
  previousSegment,
  segmentRange,
  segmentsForLsnRange,
  segmentsPerXLogId,
  segmentStartLsn,
  timelineOfWalName,
  validateSegmentSize,
  walSegmentName,
  walNameParts,
  walSegmentOffset,
} from '../../src/pg/wal-names.js';
import { UserError } from '../../src/util/errors.js';

const MB = 1024 * 1024;

test('segment name from timeline + LSN for 16 MiB and other segment sizes', () => {
  assert.equal(walSegmentName(1, parseLsn('0/0')), '000000010000000000000000');
  assert.equal(walSegmentName(1, parseLsn('16/B374D848')), '0000000100000016000000B3');
  assert.equal(walSegmentName(2, parseLsn('0/6000028')), '000000020000000000000006');
  assert.equal(walSegmentName(0x1a, parseLsn('FFFFFFFF/FFFFFFFF')), '0000001AFFFFFFFF000000FF');
  // 64 MiB: 64 segments per log; 0/6000028 is still in segment 1 (bytes 64 MiB..128 MiB)
  assert.equal(walSegmentName(1, parseLsn('0/6000028'), 64 * MB), '000000010000000000000001');
  assert.equal(walSegmentName(1, parseLsn('1/FC000000'), 64 * MB), '00000001000000010000003F');
  // 1 GiB: 4 per log; 1 MiB: 4096 per log
  assert.equal(walSegmentName(3, parseLsn('5/C0000000'), 1024 * MB), '000000030000000500000003');
  assert.equal(walSegmentName(1, parseLsn('0/FFF00000'), MB), '000000010000000000000FFF');
});

test('offset within a segment and the start LSN of a segment', () => {
  assert.equal(walSegmentOffset(parseLsn('0/6000028')), 0x28);
  assert.equal(walSegmentOffset(parseLsn('0/6000028'), 64 * MB), 0x2000028);
  assert.equal(segmentStartLsn(parseSegmentName('0000000100000016000000B3')), parseLsn('16/B3000000'));
  assert.equal(segmentStartLsn(parseSegmentName('00000001000000010000003F', 64 * MB), 64 * MB), parseLsn('1/FC000000'));
});

test('segments per xlogid and segment size validation', () => {
  assert.equal(segmentsPerXLogId(16 * MB), 0x100);
  assert.equal(segmentsPerXLogId(64 * MB), 0x40);
  assert.equal(segmentsPerXLogId(1024 * MB), 4);
  assert.equal(segmentsPerXLogId(MB), 0x1000);
  for (const bad of [0, 512 * 1024, 3 * MB, 2048 * MB, 16.5 * MB]) assert.throws(() => validateSegmentSize(bad), UserError, String(bad));
});

test('next/previous segment roll over the log boundary for each segment size', () => {
  assert.equal(nextSegment('000000010000000000000001'), '000000010000000000000002');
  assert.equal(nextSegment('0000000100000000000000FF'), '000000010000000100000000');
  assert.equal(previousSegment('000000010000000100000000'), '0000000100000000000000FF');
  assert.equal(nextSegment('00000001000000000000003F', 64 * MB), '000000010000000100000000');
  assert.equal(previousSegment('000000010000000100000000', 64 * MB), '00000001000000000000003F');
  assert.equal(nextSegment('000000020000000A00000003', 1024 * MB), '000000020000000B00000000');
  assert.equal(nextSegment('000000010000000000000FFF', MB), '000000010000000100000000');
  assert.throws(() => previousSegment('000000010000000000000000'), RangeError);
  assert.throws(() => nextSegment('00000001FFFFFFFF000000FF'), RangeError);
  // the timeline is kept, lower case input is normalised
  assert.equal(nextSegment('0000000a00000000000000fe'), '0000000A00000000000000FF');
});

test('a segment part impossible for the segment size is rejected', () => {
  assert.throws(() => parseSegmentName('000000010000000000000100', 16 * MB), UserError);
  assert.deepEqual(parseSegmentName('000000010000000000000100'), { timeline: 1, log: 0, seg: 0x100 }, 'without a size only the syntax is checked');
  assert.throws(() => parseSegmentName('000000010000000000000040', 64 * MB), UserError);
  assert.throws(() => nextSegment('000000010000000000000040', 64 * MB), UserError);
  assert.deepEqual(parseSegmentName('00000001000000000000003F', 64 * MB), { timeline: 1, log: 0, seg: 0x3f });
});

test('segment ranges iterate across log boundaries, inclusive', () => {
  assert.deepEqual([...segmentRange('0000000100000000000000FE', '000000010000000100000001')], [
    '0000000100000000000000FE',
    '0000000100000000000000FF',
    '000000010000000100000000',
    '000000010000000100000001',
  ]);
  assert.deepEqual([...segmentRange('00000001000000000000003F', '000000010000000100000000', 64 * MB)], ['00000001000000000000003F', '000000010000000100000000']);
  assert.deepEqual([...segmentRange('000000010000000000000005', '000000010000000000000005')], ['000000010000000000000005']);
  assert.deepEqual([...segmentRange('000000010000000000000006', '000000010000000000000005')], []);
  assert.throws(() => [...segmentRange('000000010000000000000001', '000000020000000000000002')], UserError);
  assert.deepEqual([...segmentsForLsnRange(1, parseLsn('0/FFFFFF0'), parseLsn('0/10000010'))], ['00000001000000000000000F', '000000010000000000000010']);
});

test('classification and parsing of every WAL-archive file kind', () => {
  assert.equal(classifyWalName('000000010000000000000001'), 'segment');
  assert.equal(classifyWalName('000000010000000000000001.partial'), 'partial');
  assert.equal(classifyWalName('000000010000000000000002.00000028.backup'), 'backup');
  assert.equal(classifyWalName('00000002.history'), 'history');
  for (const bad of ['00000001000000000000001', '0000000100000000000000001', '000000010000000000000001.gz', '0000002.history', 'XLOG', '00000001000000000000000G', '000000010000000000000002.0028.backup']) {
    assert.equal(classifyWalName(bad), undefined, bad);
    assert.throws(() => parseWalName(bad), UserError, bad);
  }
  assert.deepEqual(parseWalName('000000020000000000000002.00000028.backup'), {
    kind: 'backup',
    timeline: 2,
    segment: { timeline: 2, log: 0, seg: 2 },
    backupOffset: 0x28,
    base: '000000020000000000000002',
  });
  assert.deepEqual(parseWalName('0000000a.history'), { kind: 'history', timeline: 10, base: '0000000A' });
  assert.throws(() => parseWalName('000000000000000000000001'), UserError);
  assert.throws(() => parseSegmentName('00000002.history'), UserError);
  assert.equal(timelineOfWalName('0000001F0000000000000001.partial'), 0x1f);
  assert.equal(timelineOfWalName('00000003.history'), 3);
  assert.equal(historyFileName(26), '0000001A.history');
  assert.equal(backupHistoryFileName(1, parseLsn('0/6000028')), '000000010000000000000006.00000028.backup');
});

test('walNameParts keeps the text as written, for plain string comparison as barman does', () => {
  assert.deepEqual(walNameParts('0000000a0000000000000003.0000abcd.backup'), {
    kind: 'backup',
    timeline: 10,
    timelineHex: '0000000a',
    segmentName: '0000000a0000000000000003',
  });
  assert.deepEqual(walNameParts('0000000100000002000000FE.partial'), {
    kind: 'partial',
    timeline: 1,
    timelineHex: '00000001',
    segmentName: '0000000100000002000000FE',
  });
  assert.deepEqual(walNameParts('000000000000000000000003'), { kind: 'segment', timeline: 0, timelineHex: '00000000', segmentName: '000000000000000000000003' });
  assert.deepEqual(walNameParts('0000001F.history'), { kind: 'history', timeline: 0x1f, timelineHex: '0000001F' });
  for (const bad of ['000000010000000000000003.gz', '000000010000000000000003X', 'RECOVERYXLOG', '']) assert.equal(walNameParts(bad), undefined, bad);
});

test('WAL names order by timeline, then position; a segment precedes its .partial/.backup', () => {
  const names = [
    '000000020000000000000001',
    '000000010000000100000000',
    '00000002.history',
    '000000010000000000000001.partial',
    '0000000100000000000000ff',
    '000000010000000000000001',
  ];
  assert.deepEqual([...names].sort(compareWalNames), [
    '000000010000000000000001',
    '000000010000000000000001.partial',
    '0000000100000000000000ff',
    '000000010000000100000000',
    '00000002.history',
    '000000020000000000000001',
  ]);
});
