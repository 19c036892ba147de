/**
 * The end of a backup: which segment it waits for, how fast it gives up when archiving cannot
 * deliver that segment, and what progress says while PostgreSQL takes the starting checkpoint.
 * Real PostgreSQL 15 archiving with `pgark wal-archive` into a file:// store.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { lastSegmentOfBackup } from '../../src/backup/wait-wal.js';
import { createTestData, pgark, startArchivingServer, storeCatalog, type ArchivingServer } from './helpers.js';
import { archiveCurrentWal } from '../recovery/helpers.js';

const MiB = 1024 * 1024;

test('the last segment of a backup is the one before a stop LSN on a segment boundary (XLByteToPrevSeg)', () => {
  assert.equal(lastSegmentOfBackup(1, '0/3000000', 16 * MiB), '000000010000000000000002');
  assert.equal(lastSegmentOfBackup(1, '0/3000028', 16 * MiB), '000000010000000000000003');
  assert.equal(lastSegmentOfBackup(2, '1/0', 16 * MiB), '0000000200000000000000FF');
  assert.equal(lastSegmentOfBackup(1, '0/4000000', 64 * MiB), '000000010000000000000000');
});

describe('waiting for the end WAL', () => {
  let store: TestStore;
  let server: ArchivingServer;

  before(async () => {
    store = await startStore('file');
    server = await startArchivingServer(store);
    await createTestData(server.pg, 1000);
    // The store's folders are then created by archive_command as the server's user, as in a pod.
    await archiveCurrentWal(server.pg);
  });
  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
  });

  async function withArchiveCommand<T>(command: string, fn: () => Promise<T>): Promise<T> {
    await server.pg.query(`ALTER SYSTEM SET archive_command = '${command}'`);
    await server.pg.query('SELECT pg_reload_conf()');
    try {
      return await fn();
    } finally {
      await server.pg.query('ALTER SYSTEM RESET archive_command');
      await server.pg.query('SELECT pg_reload_conf()');
    }
  }

  async function backupStatus(name: string): Promise<{ status?: string; error?: string | null }> {
    const b = (await storeCatalog(store, server.clusterName)).backups.find((x) => x.backup_name === name);
    return { status: b?.status, error: b?.error };
  }

  // --wal-timeout is 600 in these tests: each must end on what the archiver shows, long before that.
  const backup = (name: string, extra: string[] = []) =>
    pgark(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--wal-timeout', '600', '--name', name, ...extra], server.pg.env);

  it('without an immediate checkpoint, progress says it waits for the checkpoint, then copies; backup-done has the seconds of each phase', async () => {
    await server.pg.query(`ALTER SYSTEM SET checkpoint_timeout = '123s'`);
    await server.pg.query('SELECT pg_reload_conf()');
    try {
      const r = await pgark(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--name', 'spread-checkpoint'], { ...server.pg.env, PGARK_LOG_LEVEL: 'info' });
      assert.equal(r.code, 0, r.stderr);
      const phases = r.stderr
        .split('\n')
        .filter((l) => l.includes('"backup-progress"'))
        .map((l) => JSON.parse(l).phase as string);
      const waiting = phases.indexOf('waiting for checkpoint (immediateCheckpoint is false; next one within 123s)');
      assert.ok(waiting >= 0, `phases: ${phases.join(' | ')}`);
      assert.ok(phases.indexOf('copying') > waiting, `phases: ${phases.join(' | ')}`);
      assert.ok(!phases.slice(0, waiting).includes('copying'), 'nothing claims to copy before the backup started');
      // backup-done says where the seconds went, one entry per phase, the spread checkpoint's wait included.
      const done = JSON.parse(r.stderr.split('\n').find((l) => l.includes('"backup-done"'))!) as { phaseSeconds: Record<string, number> };
      assert.deepEqual(Object.keys(done.phaseSeconds).sort(), ['checkpoint', 'commit', 'copy', 'setup', 'stop', 'upload', 'walWait']);
      for (const [phase, seconds] of Object.entries(done.phaseSeconds)) assert.ok(Number.isFinite(seconds) && seconds >= 0, `${phase}: ${seconds}`);
    } finally {
      await server.pg.query('ALTER SYSTEM RESET checkpoint_timeout');
      await server.pg.query('SELECT pg_reload_conf()');
    }
  });
  it('an empty archive_command is refused before anything is copied', async () => {
    const r = await withArchiveCommand('', () => backup('not-archiving'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot take a base backup: archive_mode is on but archive_command and archive_library are empty/);
    assert.equal((await backupStatus('not-archiving')).status, undefined, 'no backup written');
  });

  it('an archive_command that keeps failing fails the backup after one round of retries', async () => {
    const r = await withArchiveCommand('false', () => backup('archive-failing'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /archive_command failed \d+ times in a row with nothing archived in between .*last failure: [0-9A-F]{24}/);
    assert.equal((await backupStatus('archive-failing')).status, 'FAILED');
  });

  // Last: the WAL /bin/true throws away leaves the store with a gap.
  it('an archive_command that succeeds without storing here fails the backup with the reason', async () => {
    const r = await withArchiveCommand('/bin/true', () => backup('archived-elsewhere'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /WAL archiving is failing: end WAL [0-9A-F]{24} of the backup is not in file:\/\/.*: PostgreSQL reports [0-9A-F]{24}\S* archived, so archive_command \(or archive_library\) stores WAL somewhere else/);
    assert.match(r.stderr, /pgark wal-archive/, 'the fix is named');
    const b = await backupStatus('archived-elsewhere');
    assert.equal(b.status, 'FAILED');
    assert.match(b.error ?? '', /stores WAL somewhere else/);
  });
});
