/**
 * A backup whose stop LSN is exactly on a WAL segment boundary (risk 9): its last byte is in the
 * segment before the boundary, while barman's end_wal names the segment after it, which stays
 * empty and which nothing closes (pg_switch_wal at a segment start does nothing). The backup must
 * wait for the segment before, complete, record barman's end_wal, and restore.
 *
 * Real PostgreSQL 15 and `pgark backup`: the backup is paused (SIGSTOP) while it copies, WAL is
 * padded with pg_logical_emit_message until the insert position is exactly one XLOG_BACKUP_END
 * record short of a boundary, and the backup resumed, so that pg_backup_stop's record ends on the
 * boundary. Other WAL can slip in before that record (the bgwriter's running-xacts record), so the
 * whole backup is retried a bounded number of times until the stop LSN is the boundary.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import type { PgServer } from '../harness/postgres.js';
import { parseLsn } from '../../src/pg/lsn.js';
import { walSegmentName } from '../../src/pg/wal-names.js';
import { lastSegmentOfBackup } from '../../src/backup/wait-wal.js';
import { backupInBackground, createTestData, storeCatalog } from './helpers.js';
import { archiveCurrentWal, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from '../recovery/helpers.js';

/** The recovered server's log, for a failed restore's message. */
function serverLog(pgdata: string): string {
  try {
    return readFileSync(join(pgdata, 'log', 'pgark-recovery.log'), 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

const PAGE = 8192;
const SHORT_PAGE_HEADER = 24;
/** XLOG_BACKUP_END: XLogRecord (24) + short main-data header (2) + the start LSN (8), MAXALIGNed. */
const BACKUP_END_RECORD = 40;
const ATTEMPTS = 5;

/** Bytes of a pg_logical_emit_message(false, 'p', <m bytes>) record besides the m bytes: XLogRecord, main-data header (short below 256 bytes), xl_logical_message, "p\0". */
function messageOverhead(m: number): number {
  return 24 + (24 + 2 + m < 256 ? 2 : 5) + 24 + 2;
}

async function insertLsn(pg: PgServer): Promise<number> {
  const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return Number(parseLsn(lsn));
}

async function emit(pg: PgServer, bytes: number): Promise<void> {
  await pg.query(`SELECT pg_logical_emit_message(false, 'p', repeat('x', ${bytes}))`);
}

/**
 * Writes WAL until the insert position is exactly BACKUP_END_RECORD bytes before a segment
 * boundary, and returns that boundary. Measures after every record, so a record of other
 * backends in between only costs another round.
 */
async function padToJustBeforeBoundary(pg: PgServer, segSize: number): Promise<number> {
  let correction = 0;
  for (let round = 0; round < 40; round++) {
    const at = await insertLsn(pg);
    const boundary = Math.ceil(at / segSize) * segSize;
    const target = boundary - BACKUP_END_RECORD;
    const gap = target - at;
    if (gap === 0) return boundary;
    const usable = gap - (Math.floor((target - 1) / PAGE) - Math.floor(at / PAGE)) * SHORT_PAGE_HEADER;
    if (gap > 4 * PAGE) {
      // Most of the way in one record, to a page or so before the target.
      await emit(pg, usable - 2 * PAGE);
      continue;
    }
    let m = usable - messageOverhead(1000) - correction;
    if (m + 24 + 2 < 256) m = usable - messageOverhead(0) - correction;
    if (m < 0) {
      // Too close for any record: go past this boundary and aim at the next one.
      await emit(pg, gap + PAGE);
      continue;
    }
    await emit(pg, m);
    const wrote = (await insertLsn(pg)) - at;
    if (wrote !== gap && wrote < gap + PAGE) correction += wrote - gap;
  }
  throw new Error('could not bring the WAL insert position to just before a segment boundary');
}

/** Waits until PostgreSQL reports `segment` (or a later one) archived. */
async function archived(pg: PgServer, segment: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [{ last }] = await pg.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
    if (last && last >= segment) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${segment} was not archived`);
}

describe('a backup whose stop LSN is on a WAL segment boundary', () => {
  let store: TestStore;
  let origin: Origin;
  let segSize: number;

  before(async () => {
    store = await startStore('file');
    origin = await startOrigin(store);
    await origin.pg.query('ALTER SYSTEM SET autovacuum = off');
    await origin.pg.query('SELECT pg_reload_conf()');
    await insertBatch(origin.pg, 1, 1000);
    // Enough data that the copy is still going when the test pauses it.
    await createTestData(origin.pg, 300_000);
    await archiveCurrentWal(origin.pg);
    const [{ size }] = await origin.pg.query<{ size: string }>(`SELECT setting AS size FROM pg_settings WHERE name = 'wal_segment_size'`);
    segSize = Number(size);
  });
  after(async () => {
    await origin?.pg.destroy();
    await store?.stop();
  });

  it('waits only for the segment before the boundary, records barman end_wal, closes it, and restores to recoveryTarget immediate', async () => {
    const tried: string[] = [];
    let hit: { name: string; boundary: number; log: string } | undefined;
    for (let attempt = 1; attempt <= ATTEMPTS && !hit; attempt++) {
      const name = `boundary-${attempt}`;
      // A wal-timeout far above the seconds a backup takes here, far below waiting for a segment nobody closes.
      const backup = await backupInBackground(origin, /"phase":"copying"/, ['--name', name, '--compression', 'gzip', '--jobs', '1', '--wal-timeout', '120']);
      backup.child.kill('SIGSTOP');
      let boundary: number | undefined;
      try {
        const [session] = await origin.pg.query<{ query: string }>(`SELECT query FROM pg_stat_activity WHERE application_name = 'pgark_backup'`);
        if (session && !/backup_stop/.test(session.query)) boundary = await padToJustBeforeBoundary(origin.pg, segSize);
      } finally {
        backup.child.kill('SIGCONT');
      }
      const code = await backup.done;
      assert.equal(code, 0, `${name} exited ${code}`);
      const info = (await storeCatalog(store, origin.clusterName)).backups.find((b) => b.backup_name === name);
      assert.equal(info?.status, 'DONE', name);
      tried.push(`${name}: stop ${info!.end_xlog}, padded to ${boundary?.toString(16) ?? 'too late'}`);
      if (boundary !== undefined && Number(parseLsn(String(info!.end_xlog))) === boundary) hit = { name, boundary, log: backup.stderr() };
    }
    assert.ok(hit, `no attempt stopped on a boundary: ${tried.join('; ')}`);

    const info = (await storeCatalog(store, origin.clusterName)).backups.find((b) => b.backup_name === hit!.name)!;
    const timeline = Number(info.timeline);
    const after = walSegmentName(timeline, BigInt(hit.boundary), segSize);
    assert.equal(info.end_wal, after, "barman's end_wal: the segment starting at the stop LSN");
    assert.equal(Number(info.end_offset), 0);
    const last = lastSegmentOfBackup(timeline, String(info.end_xlog), segSize);
    assert.notEqual(last, after);
    assert.match(hit.log, new RegExp(`"phase":"waiting for WAL ${last}"`), 'it waited for the segment holding its last byte');
    assert.doesNotMatch(hit.log, new RegExp(`waiting for WAL ${after}`));
    // The backup's own restore point and switch close end_wal's segment, which stopping at
    // recoveryTarget immediate reads; barman's order (switch, then restore point) leaves it open.
    await archived(origin.pg, after);

    const { result, recovered } = await restore(
      recoveryManifest(store, { name: 'r-boundary', sourceName: origin.clusterName, recoveryTarget: { backupID: info.backup_id, targetImmediate: true }, noBackup: true }),
      ['--start'],
    );
    try {
      assert.equal(result.code, 0, `${result.stderr}\n${serverLog(recovered.pgdata)}`);
      const [{ n }] = await recovered.query<{ n: string }>('SELECT (SELECT count(*) FROM rows) + (SELECT count(*) FROM t) AS n');
      assert.equal(n, '301000');
    } finally {
      await recovered.destroy();
    }
  });
});
