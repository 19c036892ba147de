import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { parseControlFile, readControlFile } from '../../src/pg/control-file.js';
import { formatLsn, parseLsn } from '../../src/pg/lsn.js';
import { walSegmentName, walSegmentOffset } from '../../src/pg/wal-names.js';
import { UserError } from '../../src/util/errors.js';

/** Each major once, with different initdb choices so the fields we read actually vary. */
const servers: { major: number; initdbArgs: string[]; checksums: number; segSize: number }[] = [
  { major: 14, initdbArgs: [], checksums: 0, segSize: 16 << 20 },
  { major: 15, initdbArgs: ['--data-checksums'], checksums: 1, segSize: 16 << 20 },
  { major: 16, initdbArgs: ['--data-checksums', '--wal-segsize=64'], checksums: 1, segSize: 64 << 20 },
  { major: 17, initdbArgs: ['--wal-segsize=1'], checksums: 0, segSize: 1 << 20 },
];

async function compareWithServer(pg: PgServer, expected: (typeof servers)[number]): Promise<void> {
  // Generate some WAL and a checkpoint, so LSNs are not trivially the initdb ones.
  const before = await readControlFile(pg.pgdata);
  await pg.query('CREATE TABLE filler AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
  await pg.query('CHECKPOINT');
  const [sys] = await pg.query('SELECT pg_control_version, catalog_version_no, system_identifier::text AS sysid FROM pg_control_system()');
  const [ckp] = await pg.query('SELECT checkpoint_lsn::text, redo_lsn::text, timeline_id, prev_timeline_id, full_page_writes, next_oid::text, checkpoint_time FROM pg_control_checkpoint()');
  const [init] = await pg.query('SELECT max_data_alignment, database_block_size, wal_block_size, bytes_per_wal_segment, data_page_checksum_version FROM pg_control_init()');
  const c = await readControlFile(pg.pgdata);

  assert.equal(c.majorVersion, expected.major);
  assert.equal(c.systemIdentifier, sys.sysid);
  assert.equal(c.pgControlVersion, sys.pg_control_version);
  assert.equal(c.catalogVersion, sys.catalog_version_no);
  assert.equal(c.state, 'in production');
  assert.equal(formatLsn(c.checkpointLsn), ckp.checkpoint_lsn);
  assert.equal(formatLsn(c.redoLsn), ckp.redo_lsn);
  assert.ok(c.checkpointLsn > before.checkpointLsn, 'the file was re-read after the CHECKPOINT');
  assert.ok(c.redoLsn <= c.checkpointLsn);
  assert.equal(c.timeline, ckp.timeline_id);
  assert.equal(c.prevTimeline, ckp.prev_timeline_id);
  assert.equal(c.fullPageWrites, ckp.full_page_writes);
  assert.equal(String(c.nextOid), ckp.next_oid);
  assert.equal(c.checkpointTime.getTime(), new Date(ckp.checkpoint_time).getTime());
  assert.equal(c.maxAlign, init.max_data_alignment);
  assert.equal(c.blockSize, init.database_block_size);
  assert.equal(c.walBlockSize, init.wal_block_size);
  assert.equal(c.walSegmentSize, init.bytes_per_wal_segment);
  assert.equal(c.walSegmentSize, expected.segSize);
  assert.equal(c.dataChecksumVersion, init.data_page_checksum_version);
  assert.equal(c.dataChecksumVersion, expected.checksums);
  assert.equal(c.walLevel, 'replica');

  // Our WAL naming agrees with the server's for this segment size.
  const [walfile] = await pg.query(
    `SELECT l::text AS lsn, (pg_walfile_name_offset(l)).file_name, (pg_walfile_name_offset(l)).file_offset
       FROM (SELECT pg_current_wal_lsn() AS l) x`,
  );
  const lsn = parseLsn(walfile.lsn);
  assert.equal(walSegmentName(c.timeline, lsn, c.walSegmentSize), walfile.file_name);
  assert.equal(walSegmentOffset(lsn, c.walSegmentSize), walfile.file_offset);
  assert.equal(walSegmentName(c.timeline, c.redoLsn, c.walSegmentSize), (await pg.query('SELECT redo_wal_file FROM pg_control_checkpoint()'))[0].redo_wal_file);
}

for (const s of servers) {
  test(`pg_control of a real PostgreSQL ${s.major} server matches pg_control_* functions`, async () => {
    const pg = await startPostgres({ major: s.major, initdbArgs: s.initdbArgs });
    try {
      await compareWithServer(pg, s);
      await pg.stop();
      const stopped = await readControlFile(pg.pgdata);
      assert.equal(stopped.state, 'shut down');
    } finally {
      await pg.destroy();
    }
  });
}

function controldata(bin: string, pgdata: string): Map<string, string> {
  const r = spawnSync(bin, ['-D', pgdata], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  assert.equal(r.status, 0, r.stderr);
  return new Map(
    r.stdout
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

test("pg_control of PostgreSQL 15 matches Debian's pg_controldata, and corruption is detected", async () => {
  const pg = await startPostgres({ major: 15, settings: { max_connections: 37, wal_log_hints: 'on' } });
  try {
    await pg.query('CHECKPOINT');
    await pg.stop();
    const c = await readControlFile(pg.pgdata);
    const d = controldata('/usr/lib/postgresql/15/bin/pg_controldata', pg.pgdata);
    assert.equal(c.systemIdentifier, d.get('Database system identifier'));
    assert.equal(String(c.pgControlVersion), d.get('pg_control version number'));
    assert.equal(String(c.catalogVersion), d.get('Catalog version number'));
    assert.equal(c.state, d.get('Database cluster state'));
    assert.equal(formatLsn(c.checkpointLsn), d.get('Latest checkpoint location'));
    assert.equal(formatLsn(c.redoLsn), d.get("Latest checkpoint's REDO location"));
    assert.equal(String(c.timeline), d.get("Latest checkpoint's TimeLineID"));
    assert.equal(String(c.nextOid), d.get("Latest checkpoint's NextOID"));
    assert.equal(`0:${c.nextXid}`, d.get("Latest checkpoint's NextXID"));
    assert.equal(formatLsn(c.minRecoveryPoint), d.get('Minimum recovery ending location'));
    assert.equal(formatLsn(c.backupStartPoint), d.get('Backup start location'));
    assert.equal(c.backupEndRequired ? 'yes' : 'no', d.get('End-of-backup record required'));
    assert.equal(c.walLevel, d.get('wal_level setting'));
    assert.equal(c.walLogHints ? 'on' : 'off', d.get('wal_log_hints setting'));
    assert.equal(c.maxConnections, 37);
    assert.equal(String(c.maxConnections), d.get('max_connections setting'));
    assert.equal(String(c.walSegmentSize), d.get('Bytes per WAL segment'));
    assert.equal(String(c.blockSize), d.get('Database block size'));
    assert.equal(String(c.relationSegmentSize), d.get('Blocks per segment of large relation'));
    assert.equal(String(c.dataChecksumVersion), d.get('Data page checksum version'));

    const bytes = readFileSync(`${pg.pgdata}/global/pg_control`);
    const flipped = Buffer.from(bytes);
    flipped[40]! ^= 1;
    assert.throws(() => parseControlFile(flipped), /incorrect CRC/);
    assert.throws(() => parseControlFile(bytes.subarray(0, 100)), /too short/);
    const otherVersion = Buffer.from(bytes);
    otherVersion.writeUInt32LE(1800, 8);
    assert.throws(() => parseControlFile(otherVersion), (e: unknown) => e instanceof UserError && /pg_control_version 1800/.test(e.message));
  } finally {
    await pg.destroy();
  }
});

test('a directory without pg_control is a clear user error', async () => {
  await assert.rejects(readControlFile('/nonexistent-pgdata'), (e: unknown) => e instanceof UserError && /global\/pg_control/.test(e.message));
});
