/**
 * Backups from a standby (CNPG's spec.target prefer-standby): a real PostgreSQL 15 primary
 * archiving with `pgark wal-archive`, a real streaming standby made with pg_basebackup -R. The
 * backup reads the standby (its files with --pgdata, or BASE_BACKUP over its connection), the
 * primary only switches WAL and archives the end segment; the result restores like any other.
 * target primary, and prefer-standby with an unusable standby, read the primary.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { runPgTool, serverIdentity } from '../../src/pg/local-server.js';
import { PGARK, run, storeCatalog } from './helpers.js';
import { archiveCurrentWal, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from '../recovery/helpers.js';

let store: TestStore;
let origin: Origin;
let standby: PgServer;
const recovered: Recovered[] = [];

/** `pgark <args> --json` as the server's OS user (the store's folders stay writable by archive_command). */
async function pgarkJson(args: string[]): Promise<{ json: Record<string, unknown>; stderr: string }> {
  const who = serverIdentity();
  const r = await run(process.execPath, [PGARK, ...args, '--json'], { PGARK_LOG_LEVEL: 'warn' }, { uid: who?.uid, gid: who?.gid });
  assert.equal(r.code, 0, r.stderr);
  return { json: JSON.parse(r.stdout), stderr: r.stderr };
}

const primaryFlags = () => ['-f', origin.manifest, '--pghost', origin.pg.host, '--pgport', String(origin.pg.port), '--pguser', 'postgres', '--no-progress', '--immediate-checkpoint'];

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: 'pg', major: 15 });
  await insertBatch(origin.pg, 1);
  standby = await startPostgres({ major: 15, noStart: true });
  const conf = readFileSync(join(standby.pgdata, 'postgresql.conf'), 'utf8');
  rmSync(standby.pgdata, { recursive: true, force: true });
  const r = await runPgTool(origin.pg.bin.path('pg_basebackup'), ['-D', standby.pgdata, '-h', origin.pg.host, '-p', String(origin.pg.port), '-U', 'postgres', '-R', '-X', 'stream'], { who: standby.who });
  assert.equal(r.code, 0, r.stderr);
  // The standby's own settings (port, sockets) and no archiving of its own: the primary archives.
  writeFileSync(join(standby.pgdata, 'postgresql.conf'), conf + "\narchive_mode = 'off'\n");
  await standby.start();
  for (let i = 0; ; i++) {
    const [s] = await standby.query<{ status: string | null }>('SELECT (SELECT status FROM pg_stat_wal_receiver) AS status');
    if (s.status === 'streaming') break;
    if (i > 300) throw new Error(`standby not streaming: ${standby.log().slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await standby?.destroy();
  await origin?.pg.destroy();
  await store?.stop();
});

/** The backup_label PostgreSQL wrote (backup.info keeps it, as barman does). */
async function backupLabel(backupId: string): Promise<string> {
  const info = (await storeCatalog(store, 'pg')).backups.find((b) => b.backup_id === backupId);
  return info?.backup_label ?? '';
}

test('target primary, and prefer-standby with a standby that does not answer, back up the primary', async () => {
  const backupCr = join(origin.pg.baseDir, 'backup.yaml');
  writeFileSync(backupCr, stringify({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Backup', metadata: { name: 'on-primary' }, spec: { cluster: { name: 'pg' }, target: 'primary' } }));
  chmodSync(backupCr, 0o644);
  const primary = await pgarkJson(['apply', '-f', backupCr, ...primaryFlags().filter((f) => !['--no-progress', '--immediate-checkpoint'].includes(f)), '--standby-host', standby.host, '--standby-port', String(standby.port)]);
  assert.equal(primary.json.pgark_from, 'primary');
  assert.match(await backupLabel(primary.json.backup_id as string), /BACKUP FROM: primary/);

  const fallback = await pgarkJson(['backup', ...primaryFlags(), '--target', 'prefer-standby', '--standby-host', '127.0.0.1', '--standby-port', '1']);
  assert.equal(fallback.json.pgark_from, 'primary');
  assert.match(fallback.stderr, /standby 127\.0\.0\.1:1 not used \(cannot use it: .*\); backing up the primary/);
});

test('prefer-standby with a streaming standby: the standby is read (files and BASE_BACKUP), the primary archives the end WAL; the backup restores', async () => {
  await insertBatch(origin.pg, 2);
  const local = await pgarkJson(['backup', ...primaryFlags(), '--standby-host', standby.host, '--standby-port', String(standby.port), '--pgdata', standby.pgdata]);
  assert.equal(local.json.pgark_from, 'standby');
  assert.equal(local.json.pgark_method, 'local');
  assert.equal(local.json.status, 'DONE');
  assert.match(await backupLabel(local.json.backup_id as string), /BACKUP FROM: standby/);

  await insertBatch(origin.pg, 3);
  const remote = await pgarkJson(['backup', ...primaryFlags(), '--standby-host', standby.host, '--standby-port', String(standby.port)]);
  assert.equal(remote.json.pgark_from, 'standby');
  assert.equal(remote.json.pgark_method, 'remote');
  assert.match(await backupLabel(remote.json.backup_id as string), /BACKUP FROM: standby/);
  // The end segment came from the primary's archiver: it is in the store although the standby archives nothing.
  const [arch] = await standby.query<{ n: string }>('SELECT archived_count::text AS n FROM pg_stat_archiver');
  assert.equal(arch.n, '0');

  await insertBatch(origin.pg, 4);
  await archiveCurrentWal(origin.pg);
  const { result, recovered: r } = await restore(recoveryManifest(store, { name: 'pg-restored', sourceName: 'pg', noBackup: true }), ['--start']);
  recovered.push(r);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, new RegExp(`backup ${remote.json.backup_id as string}`));
  assert.deepEqual(await batches(r), [1, 2, 3, 4]);
});
