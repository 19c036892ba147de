/**
 * pgark backups restored by barman-cloud 3.4 (the reference reader of the layout), and a
 * barman-cloud backup read by pgark's catalog. Real PostgreSQL 15, s3rver, barman-cloud.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clientTool } from '../../src/pg/binaries.js';
import { codecExtension } from '../../src/codec/index.js';
import { backupInfoKey } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import { createTestData, pgark, recoverWithBarmanWal, run, startArchivingServer, tableChecksum, type ArchivingServer } from './helpers.js';

async function readBackupInfo(store: TestStore, serverName: string, backupId: string): Promise<string> {
  const s = await openObjectStore(store.resolved(serverName));
  try {
    return (await s.getBuffer(backupInfoKey(serverName, backupId))).toString('utf8');
  } finally {
    await s.close();
  }
}

describe('pgark backups and barman-cloud 3.4', () => {
  let store: TestStore;
  let server: ArchivingServer;
  const work = scratchDir('backup-interop');
  let expected: { count: number; md5: string };

  before(async () => {
    store = await startStore('s3');
    server = await startArchivingServer(store);
    await createTestData(server.pg, 20000);
    expected = await tableChecksum(server.pg);
  });

  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
    work.cleanup();
  });

  for (const codec of ['none', 'gzip', 'bzip2', 'snappy'] as const) {
    it(`a ${codec} backup is restored by barman-cloud-restore and PostgreSQL recovers it with barman-cloud-wal-restore`, async () => {
      const name = `interop-${codec}`;
      const b = await pgark(['backup', '-f', server.manifest, '--compression', codec, '--name', name, '--immediate-checkpoint', '--json', '--pgdata', server.pg.pgdata], server.pg.env);
      assert.equal(b.code, 0, b.stderr);
      const out = JSON.parse(b.stdout);
      assert.equal(out.status, 'DONE');
      assert.equal(out.backup_name, name);
      assert.equal(out.pgark_method, 'local');
      // The digests ride in a comment line of backup.info, which barman-cloud has to skip below.
      const info = await readBackupInfo(store, server.clusterName, out.backup_id);
      assert.match(info, new RegExp(`^#pgark_object_sha256 = \\{'data\\.tar${codecExtension(codec).replace('.', '\\.')}': '[0-9a-f]{64}'\\}$`, 'm'));

      const dest = join(work.path, `restore-${codec}`);
      const barman = store.barman!;
      const restore = await run('barman-cloud-restore', [...barman.args, store.destinationPath, server.clusterName, name, dest], barman.env);
      assert.equal(restore.code, 0, restore.stderr);
      assert.ok(existsSync(join(dest, 'backup_label')), 'backup_label restored');
      assert.ok(existsSync(join(dest, 'backup_manifest')), 'backup_manifest restored');

      if (codec === 'none') {
        const verify = await run(clientTool('pg_verifybackup'), ['-n', dest]);
        assert.equal(verify.code, 0, `pg_verifybackup: ${verify.stdout}${verify.stderr}`);
      }

      await recoverWithBarmanWal(store, server.clusterName, dest, expected);
    });
  }

  it('a gzip backup split into parts (data.tar.gz, data_0001.tar.gz, ...) is restored by barman-cloud-restore, pg_control and backup_label in data.tar.gz', async () => {
    const name = 'interop-parts';
    // A 1 MB part minimum stands in for the 256 MiB one: the test cluster's ~25 MB then makes three parts.
    const b = await pgark(['backup', '-f', server.manifest, '--compression', 'gzip', '--jobs', '3', '--name', name, '--immediate-checkpoint', '--json', '--pgdata', server.pg.pgdata], { ...server.pg.env, PGARK_BACKUP_PART_MIN: '1000000' });
    assert.equal(b.code, 0, b.stderr);
    const out = JSON.parse(b.stdout);
    const info = await readBackupInfo(store, server.clusterName, out.backup_id);
    const digests = /^#pgark_object_sha256 = \{(.*)\}$/m.exec(info)?.[1] ?? '';
    assert.deepEqual([...digests.matchAll(/'([^']+)'/g)].map((m) => m[1]).filter((k) => k.endsWith('.tar.gz')).sort(), ['data.tar.gz', 'data_0001.tar.gz', 'data_0002.tar.gz'], info);

    const s = await openObjectStore(store.resolved(server.clusterName));
    const members = new Map<string, string[]>();
    try {
      for (const part of ['data.tar.gz', 'data_0001.tar.gz', 'data_0002.tar.gz']) {
        const file = join(work.path, part);
        await pipeline(await s.get(`${backupInfoKey(server.clusterName, out.backup_id).replace(/backup\.info$/, '')}${part}`), createWriteStream(file));
        const listed = await run('tar', ['tzf', file]);
        assert.equal(listed.code, 0, listed.stderr);
        // barman's member names: ./NAME at the root.
        members.set(part, listed.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^\.\//, '')));
      }
    } finally {
      await s.close();
    }
    for (const member of ['global/pg_control', 'backup_label', 'backup_manifest']) {
      assert.deepEqual([...members].filter(([, m]) => m.includes(member)).map(([p]) => p), ['data.tar.gz'], member);
    }
    // Every part holds files, and no file is in two parts.
    const files = [...members.values()].map((m) => m.filter((l) => !l.endsWith('/') && l !== '.'));
    for (const f of files) assert.ok(f.length > 0);
    assert.equal(new Set(files.flat()).size, files.flat().length);

    const dest = join(work.path, 'restore-parts');
    const barman = store.barman!;
    const restore = await run('barman-cloud-restore', [...barman.args, store.destinationPath, server.clusterName, name, dest], barman.env);
    assert.equal(restore.code, 0, restore.stderr);
    // backup_manifest (written from every part's files) matches what the parts restored.
    const verify = await run(clientTool('pg_verifybackup'), ['-n', dest]);
    assert.equal(verify.code, 0, `pg_verifybackup: ${verify.stdout}${verify.stderr}`);
    await recoverWithBarmanWal(store, server.clusterName, dest, expected);
  });

  it('a backup taken by barman-cloud-backup appears in pgark backup list with its fields', async () => {
    const barman = store.barman!;
    const env = { ...barman.env, ...server.pg.env };
    const b = await run('barman-cloud-backup', [...barman.args, '--name', 'from-barman', '--immediate-checkpoint', '--gzip', '-h', server.pg.host, '-p', String(server.pg.port), '-U', 'postgres', store.destinationPath, server.clusterName], env);
    assert.equal(b.code, 0, b.stderr);
    const theirs = await run('barman-cloud-backup-list', [...barman.args, '--format', 'json', store.destinationPath, server.clusterName], barman.env);
    assert.equal(theirs.code, 0, theirs.stderr);
    const barmanList = JSON.parse(theirs.stdout).backups_list as Record<string, unknown>[];
    const list = await pgark(['backup', 'list', '-f', server.manifest, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const ours = JSON.parse(list.stdout).backups_list as Record<string, unknown>[];
    const mine = ours.find((x) => x.backup_name === 'from-barman');
    const ref = barmanList.find((x) => x.backup_name === 'from-barman');
    assert.ok(mine && ref, 'listed by both');
    for (const key of ['backup_id', 'status', 'begin_wal', 'end_wal', 'begin_xlog', 'end_xlog', 'systemid', 'timeline', 'version', 'server_name', 'begin_time', 'end_time']) {
      assert.deepEqual(mine[key], ref[key], key);
    }
    assert.equal(mine.pgark_compression, 'gzip');
    // pgark's own backups are listed by barman with the same ids.
    const pgarkIds = ours.filter((x) => String(x.backup_name).startsWith('interop-')).map((x) => x.backup_id);
    for (const id of pgarkIds) assert.ok(barmanList.some((x) => x.backup_id === id && x.status === 'DONE'), `barman lists ${id}`);
    const table = await pgark(['backup', 'list', '-f', server.manifest]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /from-barman\s+DONE/);
  });
});
