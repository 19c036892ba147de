/**
 * The drop-ins and barman-cloud 3.4 on one real PostgreSQL 15 and one store, both ways, on
 * s3rver and Azurite:
 *  - pgark's barman-cloud-backup (CNPG's argv: --user postgres --name backup-<ts>, PGHOST/PGPORT
 *    from the environment) -> the backup is visible to backup-show by name at once (CNPG's next
 *    call) -> barman's list/show report it field for field as pgark's do -> barman-cloud-restore
 *    restores it and PostgreSQL recovers it with barman-cloud-wal-restore;
 *  - barman-cloud-backup's backup -> pgark's list/show equal barman's -> pgark's
 *    barman-cloud-restore (CNPG's in-tree argv, options between positionals) -> PostgreSQL recovers.
 * The drop-ins run by bare name through PATH (bin/barman-cloud), as CNPG runs them.
 */
process.env.TZ = 'UTC';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { createTestData, recoverWithBarmanWal, startArchivingServer, tableChecksum, type ArchivingServer } from '../backup/helpers.js';
import { barman } from './io.js';
import { runDropin } from './helpers.js';

/** Keys that legitimately differ between pgark's JSON and barman 3.4's: 3.4 predates *_iso (3.12.1). */
const NEWER_THAN_34 = ['begin_time_iso', 'end_time_iso'];

function withoutNewer(o: Record<string, unknown>): Record<string, unknown> {
  const c = { ...o };
  for (const k of NEWER_THAN_34) delete c[k];
  return c;
}

for (const kind of ['s3', 'azure-connection-string'] as StoreKind[]) {
  describe(`barman-cloud-backup / -restore drop-ins and barman-cloud 3.4 both ways (${kind})`, () => {
    let ts: TestStore;
    let server: ArchivingServer;
    const work = scratchDir(`dropin-interop-${kind}`);
    let expected: { count: number; md5: string };
    const prov = () => ts.barman!.args;

    before(async () => {
      ts = await startStore(kind);
      server = await startArchivingServer(ts);
      await createTestData(server.pg, 20000);
      expected = await tableChecksum(server.pg);
    });
    after(async () => {
      await server?.pg.destroy();
      await ts?.stop();
      work.cleanup();
    });

    it("pgark's backup, CNPG's argv: shown by name at once; barman lists and shows it alike; barman-cloud-restore restores it and PostgreSQL recovers", async () => {
      const name = 'backup-20261205101500';
      // CNPG: --user postgres, PGHOST (socket directory) and PGPORT from the pod's environment, PGDATA set.
      const env = { ...ts.barman!.env, PGHOST: server.pg.env.PGHOST, PGPORT: server.pg.env.PGPORT, PGDATA: server.pg.pgdata, TMPDIR: work.path };
      const b = runDropin('barman-cloud-backup', ['--user', 'postgres', '--name', name, '--gzip', '--immediate-checkpoint', '--jobs', '2', '--min-chunk-size=5MB', ...prov(), ts.destinationPath, server.clusterName], env);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout, '', 'nothing on stdout');

      const show = runDropin('barman-cloud-backup-show', ['--format', 'json', ...prov(), ts.destinationPath, server.clusterName, name], ts.barman!.env);
      assert.equal(show.code, 0, show.stderr);
      const mine = JSON.parse(show.stdout).cloud;
      assert.equal(mine.backup_name, name);
      assert.equal(mine.status, 'DONE');
      assert.equal(mine.server_name, 'cloud');
      assert.equal(typeof mine.systemid, 'string');
      assert.equal(typeof mine.timeline, 'number');
      for (const k of ['begin_wal', 'end_wal', 'begin_xlog', 'end_xlog', 'begin_time', 'end_time']) assert.ok(mine[k], `${k} filled`);

      const theirs = barman(ts, 'barman-cloud-backup-show', ['--format', 'json'], [server.clusterName, name]);
      assert.equal(theirs.status, 0, theirs.stderr);
      assert.deepEqual(withoutNewer(mine), JSON.parse(theirs.stdout).cloud);
      const list = barman(ts, 'barman-cloud-backup-list', ['--format', 'json'], [server.clusterName]);
      const ourList = runDropin('barman-cloud-backup-list', ['--format', 'json', ...prov(), ts.destinationPath, server.clusterName], ts.barman!.env);
      assert.deepEqual(JSON.parse(ourList.stdout).backups_list.map(withoutNewer), JSON.parse(list.stdout).backups_list);

      const dest = join(work.path, 'restored-by-barman');
      const restore = barman(ts, 'barman-cloud-restore', [], [server.clusterName, mine.backup_id, dest]);
      assert.equal(restore.status, 0, restore.stderr);
      await recoverWithBarmanWal(ts, server.clusterName, dest, expected);
    });

    it("barman's backup: pgark lists and shows it as barman does; pgark's barman-cloud-restore (in-tree argv) restores it and PostgreSQL recovers", async () => {
      const env = { ...ts.barman!.env, ...server.pg.env };
      const b = barman(ts, 'barman-cloud-backup', ['--name', 'from-barman', '--immediate-checkpoint', '--snappy', '-h', server.pg.host, '-p', String(server.pg.port), '-U', 'postgres'], [server.clusterName], env);
      assert.equal(b.status, 0, b.stderr);
      const theirs = JSON.parse(barman(ts, 'barman-cloud-backup-show', ['--format', 'json'], [server.clusterName, 'from-barman']).stdout).cloud;
      const ours = runDropin('barman-cloud-backup-show', ['--format', 'json', ...prov(), ts.destinationPath, server.clusterName, 'from-barman'], ts.barman!.env);
      assert.equal(ours.code, 0, ours.stderr);
      assert.deepEqual(withoutNewer(JSON.parse(ours.stdout).cloud), theirs);

      const dest = join(work.path, 'restored-by-pgark');
      // CNPG in-tree: [--endpoint-url U] <dest> <server> <backupID> <prov> [extra args] <PGDATA>
      const endpoint = kind === 's3' ? ['--endpoint-url', ts.endpointURL!] : [];
      const provOnly = prov().filter((a, i, all) => a !== '--endpoint-url' && all[i - 1] !== '--endpoint-url');
      const argv = [...endpoint, ts.destinationPath, server.clusterName, theirs.backup_id, ...provOnly, '--read-timeout=60', dest];
      const r = runDropin('barman-cloud-restore', argv, ts.barman!.env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(dest).mode & 0o777, 0o700, 'PGDATA mode 0700');
      assert.ok(existsSync(join(dest, 'pg_wal')), 'pg_wal created');
      assert.ok(!existsSync(join(dest, 'recovery.signal')), 'no recovery configuration written (CNPG writes its own)');
      // A second attempt into the now non-empty directory is refused as final (exit 1), and changes nothing there.
      const again = runDropin('barman-cloud-restore', argv, ts.barman!.env);
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, /not empty/);
      const missing = runDropin('barman-cloud-restore', [...endpoint, ts.destinationPath, server.clusterName, '19990101T000000', ...provOnly, join(work.path, 'never')], ts.barman!.env);
      assert.equal(missing.code, 1, missing.stderr);
      assert.ok(!existsSync(join(work.path, 'never')), 'nothing created for a missing backup');

      await recoverWithBarmanWal(ts, server.clusterName, dest, expected);
    });
  });
}
