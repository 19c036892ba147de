/**
 * archive_status belongs to PostgreSQL. The daemon stores segments ahead of PostgreSQL's request,
 * but every segment must still go through archive_command: otherwise pg_stat_archiver undercounts
 * and a command chained after pgark in archive_command never sees the segments pgark pushed ahead
 * (a second archive silently missing WAL). A real PostgreSQL 15 drains a backlog of .ready segments
 * through the sh launcher, with a copy chained after it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { mkdirForServer } from '../../src/pg/local-server.js';
import { ArchiveService } from '../../src/wal/archive-service.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { WalTargetCache } from '../../src/wal/target.js';
import { PGARK_LAUNCHER, stopWalDaemon } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEGMENT = /^[0-9A-F]{24}$/;

const dir = scratchDir('walstatus');
let pg: PgServer | undefined;
let store: TestStore | undefined;
after(async () => {
  await pg?.destroy();
  if (pg) await stopWalDaemon(pg.pgdata);
  await store?.stop();
  dir.cleanup();
});

function statusFiles(pgdata: string, ext: string): string[] {
  return readdirSync(join(pgdata, 'pg_wal', 'archive_status'))
    .filter((f) => f.endsWith(`.${ext}`))
    .map((f) => f.slice(0, -ext.length - 1))
    .sort();
}

interface ArchiverStats {
  archived_count: string;
  failed_count: string;
  last_archived_wal: string | null;
}

test('every segment stored ahead still goes through archive_command: pg_stat_archiver counts it and a chained command receives it', async () => {
  store = await startStore('s3');
  const manifest = join(dir.path, 'cluster.yaml');
  writeFileSync(manifest, store.manifest({ clusterName: 'walstatus', objectStore: { wal: { maxParallel: 4 } } }));
  // No archive_command yet: a backlog of .ready segments builds up, so the daemon has plenty to push ahead.
  pg = await startPostgres({ major: 15, settings: { archive_mode: 'on', archive_command: '', wal_keep_size: '1GB', checkpoint_timeout: '30min' } });
  const chain = join(dir.path, 'chain');
  mkdirForServer(chain, pg.who);
  await pg.query('CREATE TABLE t (x int)');
  for (let i = 0; i < 10; i++) {
    await pg.query('INSERT INTO t SELECT generate_series(1, 1000)');
    await pg.query('SELECT pg_switch_wal()');
  }
  const backlog = statusFiles(pg.pgdata, 'ready').filter((n) => SEGMENT.test(n));
  assert.ok(backlog.length >= 10, `backlog: ${backlog.join(', ')}`);
  const [before] = await pg.query<ArchiverStats>('SELECT archived_count, failed_count FROM pg_stat_archiver');

  const archiveCommand = `PGARK_WAL_DAEMON_IDLE_SECONDS=30 PGARK_NODE=${process.execPath} ${PGARK_LAUNCHER} wal-archive -f ${manifest} %p && cp %p ${chain}/%f`;
  await pg.query(`ALTER SYSTEM SET archive_command = '${archiveCommand}'`);
  await pg.query('SELECT pg_reload_conf()');

  const deadline = Date.now() + 180_000;
  while (statusFiles(pg.pgdata, 'ready').length > 0) {
    if (Date.now() > deadline) throw new Error(`archiving did not catch up\n${pg.log().slice(-3000)}`);
    await sleep(200);
  }
  // The archiver reports to pg_stat_archiver right after its rename to .done; a segment renamed
  // by anyone else is never reported, so this wait is bounded.
  const last = backlog[backlog.length - 1];
  const reported = Date.now() + 10_000;
  let stats: ArchiverStats;
  do {
    [stats] = await pg.query<ArchiverStats>('SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver');
  } while (stats.last_archived_wal !== last && Date.now() < reported && (await sleep(200), true));
  assert.equal(stats.last_archived_wal, last, 'PostgreSQL itself archived the last segment');

  assert.deepEqual(statusFiles(pg.pgdata, 'done'), backlog, 'PostgreSQL marked exactly the backlog .done');
  assert.equal(Number(stats.archived_count) - Number(before.archived_count), backlog.length, 'archived_count grew by one per segment');
  assert.equal(Number(stats.failed_count) - Number(before.failed_count), 0, 'no failed archive_command call');
  assert.doesNotMatch(pg.log(), /could not rename/);
  assert.deepEqual(readdirSync(chain).sort(), backlog, 'the chained command received every segment');
  for (const name of backlog) assert.ok(readFileSync(join(chain, name)).equals(readFileSync(join(pg.pgdata, 'pg_wal', name))), `${name} copied intact`);

  // The launcher answered the segments stored ahead from their markers; once PostgreSQL marked
  // those .done the sweep removes the markers, so the spool does not grow with the archive.
  await stopWalDaemon(pg.pgdata);
  const rt = walRuntime(pg.pgdata);
  const markers = readdirSync(rt.archiveSpool).filter((n) => SEGMENT.test(n));
  assert.ok(markers.length > 0, 'segments were stored ahead and answered from their markers');
  await new ArchiveService(rt, new WalTargetCache()).sweepMarkers(join(pg.pgdata, 'pg_wal'));
  assert.deepEqual(readdirSync(rt.archiveSpool), [], 'markers of .done segments swept');
});
