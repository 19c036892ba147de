import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../harness/postgres.js';
import { findPgBinaries, findPgBinariesAsync, installedMajors } from '../../src/pg/binaries.js';
import { readControlFile } from '../../src/pg/control-file.js';

test('every PostgreSQL major the suite needs (14-17) is installed', () => {
  const majors = installedMajors();
  for (const m of [14, 15, 16, 17]) assert.ok(majors.includes(m), `PostgreSQL ${m} missing; have ${majors}`);
});

test("the restore's non-blocking binaries lookup finds what the blocking one finds, and refuses a missing major alike", async () => {
  for (const m of installedMajors()) {
    const [sync, async] = [findPgBinaries(m), await findPgBinariesAsync(m)];
    assert.deepEqual({ ...async, path: async.path('pg_ctl') }, { ...sync, path: sync.path('pg_ctl') });
    assert.equal(async.major, m);
  }
  const missing = [9, 10, 11, 12, 13].find((m) => !installedMajors().includes(m))!;
  assert.throws(() => findPgBinaries(missing), /PostgreSQL \d+ server binaries not found/);
  await assert.rejects(findPgBinariesAsync(missing), (err: Error) => err.message === `PostgreSQL ${missing} server binaries not found`);
});

test('the harness starts a real PostgreSQL and runs a query', async () => {
  const pg = await startPostgres({ major: 17 });
  try {
    const rows = await pg.query<{ v: string }>('SELECT current_setting($$server_version_num$$) AS v');
    assert.match(rows[0].v, /^17\d{4}$/);
  } finally {
    await pg.destroy();
  }
});

test('clusters copied from one initdb template each have a system identifier of their own, and start with it', async () => {
  const servers = await Promise.all([startPostgres({ major: 15 }), startPostgres({ major: 15 })]);
  try {
    const identifiers = await Promise.all(
      servers.map(async (pg) => {
        const [{ id }] = await pg.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
        assert.equal((await readControlFile(pg.pgdata)).systemIdentifier, id);
        return id;
      }),
    );
    assert.notEqual(identifiers[0], identifiers[1]);
  } finally {
    await Promise.all(servers.map((pg) => pg.destroy()));
  }
});
