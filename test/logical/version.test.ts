/** A pg_dump older than the server is refused up front, with the remedy, before anything is stored. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { startPostgres } from '../harness/postgres.js';
import { scratchDir } from '../harness/tmp.js';
import { pgEnv, pgark } from './helpers.js';

test('logical backup of a PostgreSQL 16 server with pg_dump 15 fails clearly and stores nothing', async () => {
  const pg = await startPostgres({ major: 16 });
  const dir = scratchDir('logical-version');
  try {
    const r = await pgark(['logical', 'backup', '--destination', `file://${dir.path}`, '--scope', 'v16'], { ...process.env, ...pgEnv(pg) });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pg_dump \(PostgreSQL\) 15[^\n]* cannot dump a PostgreSQL 16 server/);
    assert.match(r.stderr, /hint: install postgresql-client-16/);
    assert.deepEqual(readdirSync(dir.path), []);
  } finally {
    await pg.destroy();
    dir.cleanup();
  }
});
