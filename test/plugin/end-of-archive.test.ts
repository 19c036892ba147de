/**
 * The rules of WAL.Restore's end-of-archive memory, as pure functions (the calls themselves are in
 * wal-calls.test.ts): expiry after a few seconds with an injected clock, one answer per finding,
 * per restore session; and CNPG's isStreamingAvailable for the Cluster JSON it sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readCluster } from '../../src/plugin/config.js';
import { EndOfArchive, streamingAvailable } from '../../src/plugin/end-of-archive.js';

const SEG = '000000010000000000000004';

test('a missing segment is remembered per session, answered once, and forgotten after the TTL', () => {
  let now = 1_000_000;
  const memory = new EndOfArchive(5000, () => now);
  memory.found('a', SEG);
  assert.equal(memory.take('b', SEG), false, 'another session did not find it missing');
  assert.equal(memory.take('a', SEG), true);
  assert.equal(memory.take('a', SEG), false, 'answered once');
  memory.found('a', SEG);
  now += 5000;
  assert.equal(memory.take('a', SEG), false, 'expired: the archive may have grown since');
});

test("streaming is available as CNPG's wal-restore decides it", () => {
  const cluster = (o: { currentPrimary?: string; replica?: object; externalClusters?: object[] }) =>
    readCluster({ metadata: { name: 'c' }, spec: { replica: o.replica, externalClusters: o.externalClusters }, ...(o.currentPrimary ? { status: { currentPrimary: o.currentPrimary } } : {}) });
  assert.equal(streamingAvailable(cluster({}), 'c-1'), false, 'no primary yet: the restore Job, the first instance');
  assert.equal(streamingAvailable(cluster({ currentPrimary: 'c-1' }), 'c-2'), true, 'a replica');
  assert.equal(streamingAvailable(cluster({ currentPrimary: 'c-1' }), 'c-1'), false, 'the primary');
  const src = { name: 'origin', plugin: { name: 'pgark.io' } };
  assert.equal(streamingAvailable(cluster({ currentPrimary: 'c-1', replica: { enabled: true, source: 'origin' }, externalClusters: [src] }), 'c-1'), false, 'designated primary, archive-only source');
  assert.equal(
    streamingAvailable(cluster({ currentPrimary: 'c-1', replica: { enabled: true, source: 'origin' }, externalClusters: [{ ...src, connectionParameters: { host: 'origin-rw' } }] }), 'c-1'),
    true,
    'designated primary streaming from its source',
  );
});
