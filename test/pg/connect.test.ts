import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { startPostgres } from '../harness/postgres.js';
import { connectPg, describeConnection, pgConnectionConfig, serverInfo } from '../../src/pg/connect.js';
import { readControlFile } from '../../src/pg/control-file.js';
import { runPgTool } from '../../src/pg/local-server.js';
import { PgarkError, UserError } from '../../src/util/errors.js';

test('flags win over PG* variables, which win over defaults', () => {
  const env = { PGHOST: 'envhost', PGPORT: '6543', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGDATABASE: 'envdb' };
  assert.deepEqual(pgConnectionConfig({}, env), { host: 'envhost', port: 6543, user: 'envuser', password: 'envpw', database: 'envdb' });
  assert.deepEqual(pgConnectionConfig({ pghost: '/run/sock', pgport: '7000', pguser: 'u', pgpassword: 'p', pgdatabase: 'd' }, env), {
    host: '/run/sock',
    port: 7000,
    user: 'u',
    password: 'p',
    database: 'd',
  });
  const defaults = pgConnectionConfig({}, {});
  assert.equal(defaults.port, 5432);
  assert.equal(defaults.user, os.userInfo().username);
  assert.equal(defaults.database, 'postgres');
  assert.equal(defaults.password, undefined);
  assert.ok(defaults.host === '/var/run/postgresql' || defaults.host === 'localhost');
  // empty values count as unset, like libpq
  assert.equal(pgConnectionConfig({ pgport: '' }, { PGPORT: '' }).port, 5432);
});

test('an invalid port is a user error naming where it came from', () => {
  assert.throws(() => pgConnectionConfig({ pgport: 'abc' }, {}), (e: unknown) => e instanceof UserError && /--pgport: "abc"/.test(e.message));
  assert.throws(() => pgConnectionConfig({}, { PGPORT: '70000' }), (e: unknown) => e instanceof UserError && /PGPORT: "70000"/.test(e.message));
  assert.equal(describeConnection({ host: '/tmp/s', port: 5433, user: 'u', database: 'd', password: 'secret' }), 'socket /tmp/s/.s.PGSQL.5433 as u, database d');
});

test('connectPg over TCP and a socket directory, serverInfo, replication connections and password precedence (PostgreSQL 16)', async () => {
  const pg = await startPostgres({ major: 16, initdbArgs: ['--data-checksums', '--wal-segsize=32'], settings: { archive_mode: 'on', archive_command: '/bin/true %p' } });
  try {
    const env = { ...pg.env };

    const tcp = await connectPg({}, { env, application_name: 'pgark-test' });
    try {
      const info = await serverInfo(tcp);
      const control = await readControlFile(pg.pgdata);
      assert.equal(info.major, 16);
      assert.ok(info.versionNum >= 160000 && info.versionNum < 170000);
      assert.equal(info.walLevel, 'replica');
      assert.equal(info.archiveMode, 'on');
      assert.equal(info.archiveCommand, '/bin/true %p');
      assert.equal(realpathSync(info.dataDirectory!), realpathSync(pg.pgdata));
      assert.equal(info.systemIdentifier, control.systemIdentifier);
      assert.equal(info.walSegmentSize, 32 * 1024 * 1024);
      assert.equal(info.inRecovery, false);
      assert.equal(info.timeline, 1);
      const [app] = (await tcp.query('SELECT current_setting($$application_name$$) AS a')).rows;
      assert.equal(app.a, 'pgark-test');
    } finally {
      await tcp.end();
    }

    // host given as a socket directory (flag beats the TCP PGHOST in env)
    const sock = await connectPg({ pghost: join(pg.baseDir, 'sock') }, { env });
    try {
      const [r] = (await sock.query('SELECT inet_server_addr() IS NULL AS unix')).rows;
      assert.equal(r.unix, true);
    } finally {
      await sock.end();
    }

    // a replication=database connection accepts replication commands
    const repl = await connectPg({}, { env, replication: 'database' });
    try {
      const [ident] = (await repl.query('IDENTIFY_SYSTEM')).rows;
      assert.equal(ident.systemid, (await readControlFile(pg.pgdata)).systemIdentifier);
      assert.equal(Number(ident.timeline), 1);
    } finally {
      await repl.end();
    }

    // password authentication for a second role: --pgpassword beats PGPASSWORD
    await pg.query(`CREATE ROLE alice LOGIN PASSWORD 'right-horse'`);
    const hba = join(pg.pgdata, 'pg_hba.conf');
    writeFileSync(hba, `host all alice 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await pg.query('SELECT pg_reload_conf()');
    const aliceEnv = { ...env, PGUSER: 'alice', PGPASSWORD: 'wrong-battery' };
    const alice = await connectPg({ pgpassword: 'right-horse' }, { env: aliceEnv });
    assert.equal((await alice.query('SELECT current_user AS u')).rows[0].u, 'alice');
    await alice.end();
    await assert.rejects(connectPg({}, { env: aliceEnv }), (e: unknown) => {
      assert.ok(e instanceof PgarkError);
      assert.match(e.message, /cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ as alice/);
      assert.match(e.message, /password authentication failed/);
      assert.doesNotMatch(e.message + (e.hint ?? ''), /wrong-battery|right-horse/);
      return true;
    });
  } finally {
    await pg.destroy();
  }
});

test('serverInfo on a standby reports recovery and the checkpoint timeline (PostgreSQL 15)', async () => {
  const primary = await startPostgres({ major: 15 });
  const standby = await startPostgres({ major: 15, noStart: true });
  try {
    // Turn the second cluster into a standby of the first by replacing its data with a base backup.
    const conf = readFileSync(join(standby.pgdata, 'postgresql.conf'), 'utf8');
    rmSync(standby.pgdata, { recursive: true, force: true });
    const r = await runPgTool(primary.bin.path('pg_basebackup'), ['-D', standby.pgdata, '-h', primary.host, '-p', String(primary.port), '-U', 'postgres', '-R', '-X', 'stream'], { who: standby.who });
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(standby.pgdata, 'postgresql.conf'), conf);
    await standby.start();
    const client = await connectPg({}, { env: standby.env });
    try {
      const info = await serverInfo(client);
      assert.equal(info.inRecovery, true);
      assert.equal(info.timeline, 1);
      assert.equal(info.systemIdentifier, (await readControlFile(primary.pgdata)).systemIdentifier);
    } finally {
      await client.end();
    }
  } finally {
    await standby.destroy();
    await primary.destroy();
  }
});
