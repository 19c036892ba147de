/**
 * The timeline model against a real archive: PostgreSQL 15 archiving with `pgark wal-archive`
 * into s3rver, two `pgark backup`s. Ranges, recoverable points and their times are checked
 * against the objects as the store lists them; then a segment between the backups is deleted and
 * the gap, the first backup's shortened window and the unchanged last point are checked.
 */
process.env.TZ = 'UTC';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { listBackups } from '../../src/catalog/catalog.js';
import { walKey, walsPrefix } from '../../src/catalog/layout.js';
import { formatLsn } from '../../src/pg/lsn.js';
import { nextSegment, parseSegmentName, segmentNumber } from '../../src/pg/wal-names.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { loadTimeline } from '../../src/timeline/load.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupOrigin, insertBatch, startOrigin, type Origin } from '../recovery/helpers.js';

const SEG = 16 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let ts: TestStore;
let origin: Origin;
let store: ObjectStore;
const ids: string[] = [];

before(async () => {
  ts = await startStore('s3');
  origin = await startOrigin(ts);
  ids.push(await backupOrigin(origin));
  for (let i = 1; i <= 2; i++) {
    await insertBatch(origin.pg, i);
    await archiveCurrentWal(origin.pg);
  }
  await sleep(1100);
  ids.push(await backupOrigin(origin));
  // The newest segment is stored a second after the backup ended, so its mtime (whole seconds on S3) is later.
  await sleep(1100);
  await insertBatch(origin.pg, 3);
  await archiveCurrentWal(origin.pg);
  store = await openObjectStore(ts.resolved(origin.clusterName));
});

after(async () => {
  await store?.close();
  await origin?.pg.destroy();
  await ts?.stop();
});

/** The archived segments (not .backup or .history) as the store lists them, in order. */
async function segments() {
  const out: { name: string; key: string; lastModified: Date }[] = [];
  for await (const e of store.list(walsPrefix(origin.clusterName))) {
    const name = e.object?.key.split('/').pop() ?? '';
    if (/^[0-9A-F]{24}$/.test(name)) out.push({ name, key: e.object!.key, lastModified: e.object!.lastModified! });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

test('timeline model of a real PostgreSQL 15 archive (s3rver): one range, both backups recoverable to its end; a deleted segment is a gap that stops the first', async () => {
  const server = origin.clusterName;
  const catalog = await listBackups(store, server);
  const [b1, b2] = catalog.backups;
  assert.deepEqual([b1.backup_id, b2.backup_id], ids);
  const segs = await segments();
  const last = segs.at(-1)!;
  const endOfArchive = formatLsn(BigInt(segmentNumber(parseSegmentName(last.name), SEG) + 1) * BigInt(SEG));

  const m = await loadTimeline(store, server, { retentionPolicy: '7d' });
  assert.equal(m.lanes.length, 1);
  assert.deepEqual(
    m.lanes[0].coverage.map((c) => [c.firstSegment, c.lastSegment, c.segments]),
    [[segs[0].name, last.name, segs.length]],
  );
  assert.deepEqual(m.lanes[0].gaps, []);
  assert.deepEqual(m.firstRecoverable, { time: b1.end_time!.toDate().toISOString(), timeSource: 'backup', lsn: b1.end_xlog, timeline: 1, backupId: b1.backup_id });
  assert.deepEqual(m.lastRecoverable, { time: last.lastModified.toISOString(), timeSource: 'archived', lsn: endOfArchive, timeline: 1, backupId: b1.backup_id });
  for (const b of m.backups) assert.equal(b.recoverability?.endsAt, 'end-of-archive', b.backupId);
  assert.equal(m.backups[1].beginTime, b2.begin_time!.toDate().toISOString());
  assert.equal(m.backups[1].codec, 'none');
  assert.ok(m.backups[1].storedBytes > 1024 * 1024, 'a real data.tar');

  // Take away the segment after the first backup's end: its window stops there, the second's does not.
  const missing = nextSegment(b1.end_wal!);
  assert.ok(missing < b2.begin_wal!, `${missing} lies between the backups`);
  await store.delete([walKey(server, missing)]);
  const cut = await loadTimeline(store, server, { retentionPolicy: '7d' });
  assert.deepEqual(
    cut.lanes[0].gaps.map((g) => [g.firstMissing, g.lastMissing, g.missing]),
    [[missing, missing, 1]],
  );
  const before = segs[segs.findIndex((s) => s.name === missing) - 1];
  // `before` is the first backup's end segment, archived within a second of its end: S3's whole-second mtime may fall
  // before the backup's own end time, and the model's clock never runs backwards (LsnClock), so it reads the later.
  const beforeTime = new Date(Math.max(before.lastModified.getTime(), b1.end_time!.toDate().getTime())).toISOString();
  assert.deepEqual(cut.lanes[0].gaps[0].start, { lsn: formatLsn(BigInt(segmentNumber(parseSegmentName(missing), SEG)) * BigInt(SEG)), time: beforeTime, timeSource: 'archived' });
  const r1 = cut.backups[0].recoverability!;
  assert.equal(r1.endsAt, 'gap');
  assert.equal(r1.to?.lsn, cut.lanes[0].gaps[0].start.lsn);
  assert.equal(cut.backups[1].recoverability?.endsAt, 'end-of-archive');
  assert.deepEqual(cut.firstRecoverable, m.firstRecoverable);
  assert.deepEqual(cut.lastRecoverable, { ...m.lastRecoverable!, backupId: b2.backup_id });
  assert.equal(cut.recoverable.length, 2, 'the gap splits what can be recovered');
});
