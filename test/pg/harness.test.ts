import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../harness/postgres.js';
import { installedMajors } from '../../src/pg/binaries.js';

test('every PostgreSQL major the suite needs (14-17) is installed', () => {
  const majors = installedMajors();
  for (const m of [14, 15, 16, 17]) assert.ok(majors.includes(m), `PostgreSQL ${m} missing; have ${majors}`);
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
