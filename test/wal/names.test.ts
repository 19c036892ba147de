/** Pure logic of the WAL commands: names, prefetch order, segment headers, argument parsing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { followingSegments, recogniseWalName, segmentsPerXLogId } from '../../src/pg/wal-names.js';
import { readSegmentHeader } from '../../src/wal/segment.js';
import { parseWalArgs } from '../../src/wal/client.js';
import { craftSegment } from './helpers.js';

test('WAL names: kinds and timelines', () => {
  assert.deepEqual(recogniseWalName('0000000200000003000000FE'), { kind: 'segment', timeline: 2 });
  assert.deepEqual(recogniseWalName('0000000A.history'), { kind: 'history', timeline: 10 });
  assert.equal(recogniseWalName('000000010000000000000003.00000028.backup')?.kind, 'backup');
  assert.equal(recogniseWalName('000000010000000000000003.partial')?.kind, 'partial');
  // Listings must not stop at a name PostgreSQL never writes: it is recognised, only parseWalName refuses it.
  assert.deepEqual(recogniseWalName('000000000000000000000003'), { kind: 'segment', timeline: 0 });
  assert.equal(recogniseWalName('RECOVERYXLOG'), undefined);
  assert.equal(recogniseWalName('000000010000000000000003.gz'), undefined);
});

test('prefetch order wraps the segment number at the end of a log for 16 MiB and 1 GiB segments', () => {
  assert.equal(segmentsPerXLogId(16 * 1024 * 1024), 256);
  assert.deepEqual(followingSegments('0000000100000003000000FE', 3, 16 * 1024 * 1024), [
    '0000000100000003000000FF',
    '000000010000000400000000',
    '000000010000000400000001',
  ]);
  assert.deepEqual(followingSegments('000000010000000000000003', 2, 1024 * 1024 * 1024), ['000000010000000100000000', '000000010000000100000001']);
  assert.deepEqual(followingSegments('00000002.history', 3, 16 * 1024 * 1024), []);
  assert.deepEqual(followingSegments('000000010000000000000003.partial', 3, 16 * 1024 * 1024), []);
});

test('segment header: system identifier, timeline, page address and size from the long page header', () => {
  const h = readSegmentHeader(craftSegment('000000030000000100000002', 7312345678901234567n));
  assert.deepEqual(h, { timeline: 3, pageAddress: 0x102000000n, systemIdentifier: '7312345678901234567', segmentSize: 16 * 1024 * 1024 });
  assert.equal(readSegmentHeader(Buffer.alloc(8192)), undefined);
});

test('archive_command / restore_command arguments: -f (repeatable, or PGARK_CONFIG), --source, usage errors', () => {
  const a = parseWalArgs('wal-restore', ['-f', '/etc/a.yaml', '--file=/etc/b.yaml', '--source', 'old', '000000010000000000000001', 'pg_wal/RECOVERYXLOG']);
  assert.deepEqual(a.config, { files: ['/etc/a.yaml', '/etc/b.yaml'], source: 'old' });
  assert.deepEqual(a.positional, ['000000010000000000000001', 'pg_wal/RECOVERYXLOG']);
  const saved = process.env.PGARK_CONFIG;
  process.env.PGARK_CONFIG = '/etc/pgark/cluster.yaml';
  try {
    assert.deepEqual(parseWalArgs('wal-archive', ['pg_wal/000000010000000000000001']).config.files, ['/etc/pgark/cluster.yaml']);
    delete process.env.PGARK_CONFIG;
    assert.throws(() => parseWalArgs('wal-archive', ['pg_wal/x']), /no manifest/);
    assert.throws(() => parseWalArgs('wal-archive', ['-f', 'c.yaml', '--source', 'x', 'pg_wal/x']), /--source is for wal-restore only/);
    assert.throws(() => parseWalArgs('wal-archive', ['-f', 'c.yaml']), /usage: pgark wal-archive/);
    assert.throws(() => parseWalArgs('wal-archive', ['-f', 'c.yaml', '--bogus', 'pg_wal/x']), /unknown option --bogus/);
  } finally {
    if (saved === undefined) delete process.env.PGARK_CONFIG;
    else process.env.PGARK_CONFIG = saved;
  }
});
