/**
 * `pgark restore --delta` with a real PostgreSQL 15 and a file:// store: a data directory restored
 * from one backup is brought to a later backup, in which one of 50 equal tables (2% of the data)
 * was rewritten. The zstd backups carry member indexes, so only the members that differ are
 * fetched (ranged reads): the bytes transferred, written and skipped are measured, the server
 * starts and holds the later data. A gzip backup has no restart points: the delta streams it whole
 * and says so. Directories a delta must not touch are refused unchanged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startStore, type TestStore } from '../harness/stores.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { scratchDir } from '../harness/tmp.js';
import { freePort } from '../harness/ports.js';
import { findPgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStop, serverIdentity } from '../../src/pg/local-server.js';
import { archiveCurrentWal, backupOrigin, pgark, recoveryManifest, startOrigin, type Origin } from './helpers.js';

const TABLES = 50;
let store: TestStore;
let origin: Origin;
let other: PgServer;
const work = scratchDir('delta');
const pgdata = join(work.path, 'data');
const manifest = join(work.path, 'recovery.yaml');
let port = 0;

async function checksum(q: (sql: string) => Promise<{ md5: string }[]>, table: string): Promise<string> {
  return (await q(`SELECT md5(string_agg(id::text || payload, ',' ORDER BY id)) AS md5 FROM ${table}`))[0].md5;
}

/** Every file under a directory with its size and mtime, to show a refused run changed nothing. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: 'pg', major: 15 });
  // 50 tables of about 2 MB each: one of them is 2% of the data.
  for (let i = 0; i < TABLES; i++) {
    await origin.pg.query(`CREATE TABLE t${i} (id int, payload text); INSERT INTO t${i} SELECT g, md5((g * ${i + 1})::text) FROM generate_series(1, 25000) g`);
  }
  await origin.pg.query('VACUUM FREEZE ANALYZE');
  await origin.pg.query('CHECKPOINT');
  await backupOrigin(origin, ['--compression', 'zstd']);
  writeFileSync(manifest, recoveryManifest(store, { name: 'pg-delta', sourceName: 'pg', noBackup: true }));
  port = await freePort();
  other = await startPostgres({ major: 15, noStart: true });
});

after(async () => {
  if (existsSync(join(pgdata, 'postmaster.pid'))) await pgCtlStop(findPgBinaries(15), pgdata, serverIdentity(), 'immediate').catch(() => undefined);
  await other?.destroy();
  await origin?.pg.destroy();
  await store?.stop();
  work.cleanup();
});

const restoreArgs = (...extra: string[]) => ['restore', '-f', manifest, '--pgdata', pgdata, '--pghost', '127.0.0.1', '--pgport', String(port), '--json', ...extra];

test('a delta restore fetches and writes only what changed (one table of 50), removes what the backup lacks, verifies and starts', async () => {
  const full = await pgark(restoreArgs());
  assert.equal(full.code, 0, full.stderr);
  const fullJson = JSON.parse(full.stdout);
  const fullBytes: number = fullJson.download.bytes;
  assert.ok(fullJson.download.files > 1000 && fullBytes > 5 * 1024 * 1024, `the backup holds the 50 tables (${fullBytes} bytes stored)`);
  // What a previous server run leaves and the backup does not hold.
  writeFileSync(join(pgdata, 'pg_wal', '000000010000000000000099'), Buffer.alloc(1024));
  writeFileSync(join(pgdata, 'postmaster.opts'), 'stale');

  // 2% of the data changes: t7 is rewritten into a new file.
  await origin.pg.query("TRUNCATE t7; INSERT INTO t7 SELECT g, md5(('changed' || g)::text) FROM generate_series(1, 25000) g");
  await origin.pg.query('CHECKPOINT');
  await backupOrigin(origin, ['--compression', 'zstd']);
  const want = await checksum((sql) => origin.pg.query(sql), 't7');
  await archiveCurrentWal(origin.pg);

  const delta = await pgark(restoreArgs('--delta', '--start'));
  assert.equal(delta.code, 0, delta.stderr);
  const r = JSON.parse(delta.stdout);
  const d = r.download.delta;
  const transferred: number = r.download.bytes;
  const dataBytes = d.bytesWritten + d.bytesSkipped;
  process.stderr.write(
    `delta restore (zstd): ${d.kept} kept, ${d.rewritten} written, ${d.removed} removed; written ${d.bytesWritten} B (${((d.bytesWritten / dataBytes) * 100).toFixed(1)}% of the files' bytes), ` +
      `skipped ${d.bytesSkipped} B; transferred ${transferred} B in ${d.rangedReads} ranged GETs + ${d.indexBytes} B of index = ${(((transferred + d.indexBytes) / fullBytes) * 100).toFixed(1)}% of a full restore's ${fullBytes} B\n`,
  );
  assert.deepEqual([d.rangedObjects, d.streamed], [1, []], 'data.tar.zst was read by ranges');
  assert.match(delta.stderr, /1 tar\(s\) read by ranges \(\d+ ranged GETs/);
  assert.ok(d.rangedReads >= 1);
  assert.ok(transferred + d.indexBytes <= 0.15 * fullBytes, `at most 15% of a full restore's bytes cross the network here (the catalogs that changed weigh more in a 100 MB database): ${transferred} of ${fullBytes}`);
  assert.ok(d.bytesWritten > 0 && d.bytesWritten <= 0.05 * dataBytes, `at most 5% written: ${d.bytesWritten} of ${dataBytes}`);
  assert.ok(d.kept > d.rewritten, 'most files kept');
  assert.ok(d.removed >= 3, 'the old t7 file, the stale WAL and postmaster.opts are removed');
  assert.ok(!existsSync(join(pgdata, 'pg_wal', '000000010000000000000099')));
  assert.ok(!existsSync(join(pgdata, 'postmaster.opts')) || readFileSync(join(pgdata, 'postmaster.opts'), 'utf8') !== 'stale');
  assert.equal(r.download.verification.manifest, true, 'verified against backup_manifest like a full restore');

  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    assert.equal(await checksum(async (sql) => (await c.query(sql)).rows, 't7'), want);
    assert.equal((await c.query('SELECT count(*)::int AS n FROM t49')).rows[0].n, 25000);
  } finally {
    await c.end();
  }
});

test('--delta refuses a running server, another system, and a directory that is not a data directory, changing nothing', async () => {
  // The server started by the previous test is still running on pgdata.
  const before = snapshot(join(pgdata, 'global'));
  const running = await pgark(restoreArgs('--delta'));
  assert.equal(running.code, 2, running.stderr);
  assert.match(running.stderr, /--delta: a server \(pid \d+\) is running on /);
  assert.deepEqual(snapshot(join(pgdata, 'global')), before);

  const otherBefore = snapshot(other.pgdata);
  const foreign = await pgark(['restore', '-f', manifest, '--pgdata', other.pgdata, '--delta']);
  assert.equal(foreign.code, 2, foreign.stderr);
  assert.match(foreign.stderr, /--delta: .* belongs to system \d+, backup \d{8}T\d{6} to system \d+/);
  assert.deepEqual(snapshot(other.pgdata), otherBefore);

  const plain = join(work.path, 'not-pgdata');
  const none = await pgark(['restore', '-f', manifest, '--pgdata', plain, '--delta']);
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /--delta: .* is not a PostgreSQL data directory/);
  assert.ok(!existsSync(plain));
});

test('a gzip backup has no restart points: --delta streams it whole, says so, and still writes only what differs', async () => {
  // The server started by the first test is still running on pgdata.
  await pgCtlStop(findPgBinaries(15), pgdata, serverIdentity(), 'fast');
  await origin.pg.query("UPDATE t3 SET payload = 'gz' WHERE id <= 100");
  await origin.pg.query('CHECKPOINT');
  await backupOrigin(origin, ['--compression', 'gzip']);
  const delta = await pgark(restoreArgs('--delta'));
  assert.equal(delta.code, 0, delta.stderr);
  const r = JSON.parse(delta.stdout);
  const d = r.download.delta;
  assert.equal(d.rangedObjects, 0);
  assert.equal(d.streamed.length, 1);
  assert.match(d.streamed[0], /^data\.tar\.gz is gzip-compressed, which has no restart points for ranged reads$/);
  assert.match(delta.stderr, /streamed whole, as without --delta: data\.tar\.gz is gzip-compressed/);
  assert.equal(r.download.objects.digests, true, 'a streamed tar is checked against its SHA-256 as in a full restore');
  assert.ok(d.bytesWritten < 0.05 * (d.bytesWritten + d.bytesSkipped), 'the byte comparison still writes only what differs');
  assert.equal(r.download.verification.manifest, true);
});
