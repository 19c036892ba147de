/**
 * Every PostgreSQL major installed here (14-17) backed up both ways (local: pg_backup_start/stop
 * and the data directory read from disk; remote: BASE_BACKUP over a replication connection), with
 * a tablespace outside PGDATA; each backup is restored by barman-cloud-restore and recovered to its
 * consistent point with barman-cloud-wal-restore.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { clientTool, installedMajors } from '../../src/pg/binaries.js';
import { mkdirForServer, serverIdentity } from '../../src/pg/local-server.js';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { createTestData, pgark, run, startArchivingServer, startRestored, tableChecksum } from './helpers.js';

const majors = installedMajors().filter((m) => m >= 14 && m <= 17);

describe('base backups of every PostgreSQL major, local and remote, with a tablespace', () => {
  let s3: S3rver;
  const work = scratchDir('backup-versions');

  before(async () => {
    s3 = await startS3rver();
  });
  after(async () => {
    await s3?.stop();
    work.cleanup();
  });

  it('covers PostgreSQL 14, 15, 16 and 17', () => {
    assert.deepEqual(majors, [14, 15, 16, 17]);
  });

  for (const major of majors) {
    it(`PostgreSQL ${major}: local and remote backups restore with their tablespace`, async () => {
      const store = await startStore('s3', { s3rver: s3 });
      const server = await startArchivingServer(store, { major, clusterName: `pg${major}` });
      try {
        const spcDir = join(server.pg.baseDir, 'spc');
        mkdirForServer(spcDir, serverIdentity());
        await server.pg.query(`CREATE TABLESPACE spc LOCATION '${spcDir}'`);
        await createTestData(server.pg, 3000, 'spc');
        const expected = await tableChecksum(server.pg);
        const oid = (await server.pg.query<{ oid: number }>(`SELECT oid::int AS oid FROM pg_tablespace WHERE spcname = 'spc'`))[0].oid;

        for (const method of ['local', 'remote'] as const) {
          const name = `${method}-${major}`;
          const args = ['backup', '-f', server.manifest, '--method', method, '--name', name, '--immediate-checkpoint', '--compression', 'gzip', '--json'];
          if (method === 'local') args.push('--pgdata', server.pg.pgdata);
          const b = await pgark(args, server.pg.env);
          assert.equal(b.code, 0, b.stderr);
          const info = JSON.parse(b.stdout);
          assert.equal(info.pgark_method, method);
          assert.equal(info.status, 'DONE');
          assert.equal(Math.floor(info.version / 10000), major);
          assert.deepEqual(info.tablespaces, [['spc', oid, spcDir]]);

          const dest = join(work.path, `pg${major}-${method}`);
          const spcTarget = join(work.path, `pg${major}-${method}-spc`);
          const barman = store.barman!;
          const r = await run('barman-cloud-restore', [...barman.args, '--tablespace', `spc:${spcTarget}`, store.destinationPath, server.clusterName, name, dest], barman.env);
          assert.equal(r.code, 0, r.stderr);
          assert.ok(readdirSync(spcTarget).some((d) => d.startsWith(`PG_${major}_`)), 'tablespace directory restored');
          assert.ok(existsSync(join(dest, 'backup_manifest')));
          if (major === 15) {
            // Debian's pg_verifybackup 15 checks every file, the tablespace's included, against pgark's manifest.
            const verify = await run(clientTool('pg_verifybackup'), ['-n', dest]);
            assert.equal(verify.code, 0, `pg_verifybackup: ${verify.stdout}${verify.stderr}`);
          }
          const env = Object.entries(barman.env).map(([k, v]) => `${k}='${v}'`).join(' ');
          const restored = await startRestored(major, dest, `${env} barman-cloud-wal-restore ${barman.args.join(' ')} ${store.destinationPath} ${server.clusterName} %f %p`, [spcTarget], { toConsistency: true });
          try {
            assert.deepEqual(await tableChecksum({ query: restored.query } as never), expected);
            const loc = await restored.query<{ loc: string }>(`SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'spc'`);
            assert.equal(loc[0].loc, spcTarget);
          } finally {
            await restored.stop();
          }
        }
      } finally {
        await server.pg.destroy();
        await store.stop();
      }
    });
  }
});
