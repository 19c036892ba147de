/**
 * What happens around a backup: a Backup manifest names it, archiving that fails is reported
 * clearly and never yields a DONE backup, and a backup killed with SIGKILL stays invisible to
 * recovery and is removable; PGARK_COMPRESS_LEVEL is checked before anything is stored. Real
 * PostgreSQL 15 and a file:// store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startStore, type TestStore } from '../harness/stores.js';
import { loadContext } from '../../src/config/index.js';
import { applyBackup } from '../../src/backup/apply.js';
import { startProxy } from '../harness/proxy.js';
import { backupUntilWalWait, closeArchiveGate, createTestData, pgark, startArchivingServer, storeCatalog, storeObjects, waitForStaleClaim, type ArchivingServer } from './helpers.js';
import { archiveCurrentWal } from '../recovery/helpers.js';


async function objectCount(store: TestStore, prefix: string): Promise<number> {
  return (await storeObjects(store, prefix)).length;
}

describe('backup lifecycle', () => {
  let store: TestStore;
  let server: ArchivingServer;

  before(async () => {
    store = await startStore('file');
    server = await startArchivingServer(store);
    await createTestData(server.pg, 2000);
    // The store's folders are created by archive_command as the server's user (as in a pod), not by
    // the backups below run as root: pgark's private folders would keep archive_command out.
    await archiveCurrentWal(server.pg);
  });
  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
  });

  // PGARK_COMPRESS_LEVEL: refused out of the codec's range before anything is stored, applied otherwise.
  const gzipBackup = (name: string, level?: string) =>
    pgark(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--compression', 'gzip', '--name', name], { ...server.pg.env, ...(level === undefined ? {} : { PGARK_COMPRESS_LEVEL: level }) });
  const dataTarSize = async (name: string) => {
    const b = (await storeCatalog(store, server.clusterName)).backups.find((x) => x.backup_name === name);
    assert.equal(b?.status, 'DONE', `${name} is DONE`);
    const tar = (await storeObjects(store, `${server.clusterName}/base/${b.backup_id}/`)).find((o) => o.key.endsWith('/data.tar.gz'));
    assert.ok(tar, `${name} has a data.tar.gz`);
    return tar.size;
  };

  it('PGARK_COMPRESS_LEVEL outside gzip\'s 0-9 is refused with the variable, the range and a hint, and nothing is stored', async () => {
    const before = await objectCount(store, `${server.clusterName}/base/`);
    const r = await gzipBackup('too-high', '12');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /PGARK_COMPRESS_LEVEL=12 is not a gzip level: expected 0-9/);
    assert.match(r.stderr, /set a level from 0 to 9/);
    assert.equal(await objectCount(store, `${server.clusterName}/base/`), before);
  });

  it('PGARK_COMPRESS_LEVEL=0 stores the tar uncompressed inside gzip, far larger than the default level', async () => {
    assert.equal((await gzipBackup('level-0', '0')).code, 0);
    assert.equal((await gzipBackup('default-level')).code, 0);
    const [stored, compressed] = [await dataTarSize('level-0'), await dataTarSize('default-level')];
    assert.ok(stored > 3 * compressed, `level 0: ${stored} bytes, default: ${compressed}`);
  });

  it('a Backup manifest applied with applyBackup records metadata.name as backup_name', async () => {
    const backupFile = join(server.pg.baseDir, 'backup.yaml');
    writeFileSync(backupFile, stringify({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Backup', metadata: { name: 'nightly-manual' }, spec: { cluster: { name: server.clusterName } } }));
    const ctx = await loadContext({ files: [server.manifest, backupFile] });
    const backup = ctx.manifests.backups[0];
    const pg = { pghost: server.pg.host, pgport: String(server.pg.port), pguser: 'postgres', pgdata: server.pg.pgdata };
    await applyBackup(ctx, backup, { pg });
    const c = await storeCatalog(store, server.clusterName);
    const b = c.backups.find((x) => x.backup_name === 'nightly-manual');
    assert.ok(b, 'backup listed under its manifest name');
    assert.equal(b.status, 'DONE');
    assert.equal(b.server_name, 'cloud');
    const show = await pgark(['backup', 'show', 'nightly-manual', '-f', server.manifest, '--json']);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).cloud.backup_id, b.backup_id);
    // The same name twice would make recovery by name ambiguous.
    await assert.rejects(applyBackup(ctx, backup, { pg }), /already used by backup/);
  });

  it('archiving that fails ends in a clear error and a FAILED backup, never DONE', async () => {
    await server.pg.query(`ALTER SYSTEM SET archive_command = 'false'`);
    await server.pg.query('SELECT pg_reload_conf()');
    try {
      const r = await pgark(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--wal-timeout', '3', '--name', 'no-wal'], server.pg.env);
      assert.equal(r.code, 1, r.stderr);
      // Failing archive_command is seen in pg_stat_archiver (or, at worst, the 3s timeout ends the wait).
      assert.match(r.stderr, /WAL archiving is failing: end WAL [0-9A-F]{24} of the backup is not in /);
      assert.match(r.stderr, /last failure: [0-9A-F]{24}/);
      const c = await storeCatalog(store, server.clusterName);
      const b = c.backups.find((x) => x.backup_name === 'no-wal');
      assert.equal(b?.status, 'FAILED');
      assert.match(b?.error ?? '', /WAL archiving is failing/);
    } finally {
      await server.pg.query('ALTER SYSTEM RESET archive_command');
      await server.pg.query('SELECT pg_reload_conf()');
    }
  });

  it('a backup killed with SIGKILL never shows as DONE, lists INCOMPLETE once its claim is stale, and backup delete removes its objects', async () => {
    // Archiving is held back, so the backup is caught after its tars are stored but before the commit.
    const gate = await closeArchiveGate(server);
    let id = '';
    try {
      // A 1 s heartbeat makes the claim stale 6 s after the kill rather than 60 s.
      const backup = await backupUntilWalWait(server, [], { PGARK_CLAIM_HEARTBEAT_SECONDS: '1' });
      id = backup.backupId;
      backup.child.kill('SIGKILL');
      await backup.done;
    } finally {
      await gate.open();
    }
    await waitForStaleClaim(store, server.clusterName, id);
    const c = await storeCatalog(store, server.clusterName);
    assert.ok(!c.backups.some((b) => b.backup_id === id), 'no backup.info was written');
    assert.ok(c.incomplete.includes(id), 'its tars are there, without backup.info');
    const list = await pgark(['backup', 'list', '-f', server.manifest]);
    assert.match(list.stdout, new RegExp(`${id}\\s+-\\s+INCOMPLETE`));
    const prefix = `${server.clusterName}/base/${id}/`;
    assert.ok((await objectCount(store, prefix)) > 0);
    const del = await pgark(['backup', 'delete', id, '-f', server.manifest]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await objectCount(store, prefix), 0);
  });

  it('a remote backup whose connection is cut mid-stream fails and is never DONE', async () => {
    const proxy = await startProxy(server.pg.port);
    try {
      // The data directory is about 25 MB: cut once 5 MB have flowed through BASE_BACKUP.
      proxy.cutAfter(5 * 1024 * 1024);
      const r = await pgark(['backup', '-f', server.manifest, '--method', 'remote', '--immediate-checkpoint', '--name', 'cut', '--pghost', '127.0.0.1', '--pgport', String(proxy.port)], { PGUSER: 'postgres' });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Connection terminated|ECONNRESET|terminated unexpectedly/i);
      assert.equal(proxy.cuts, 1);
    } finally {
      await proxy.close();
    }
    const c = await storeCatalog(store, server.clusterName);
    const b = c.backups.find((x) => x.backup_name === 'cut');
    assert.ok(!b || b.status === 'FAILED', `status ${b?.status}`);
    assert.ok(!c.backups.some((x) => x.backup_name === 'cut' && x.status === 'DONE'));
  });
});
