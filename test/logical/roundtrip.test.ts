/**
 * Logical backups end to end on real servers: a PostgreSQL 15 source with several schemas, large objects,
 * non-ASCII data and a ~100 MB table, dumped to s3rver and to Azurite, restored into a second
 * PostgreSQL 15 with the non-interactive and the interactive (real pseudo-terminal) restore tool, and
 * compared table by table. Also: failures that must change nothing, retention, listing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startAzurite, type Azurite } from '../harness/azurite.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { resolveLocation } from '../../src/logical/location.js';
import { runLogicalBackup } from '../../src/logical/backup.js';
import { readBackupSettings } from '../../src/logical/backup-env.js';
import { parseRetention } from '../../src/logical/retention.js';
import { REPO, RESTORE_SH, createDataset, dbEnv, fingerprint, pgEnv, pgark, run, s3RestoreEnv as restoreEnvFor, s3StoreEnv } from './helpers.js';

const BIG_ROWS = 400_000; // ~100 MB table
const SCOPE = 'shop-cluster';

let src: PgServer;
let dst: PgServer;
let s3: S3rver;
let az: Azurite;
let tmp: { path: string; cleanup(): void };
let expected: Record<string, string>;
let expectedTiny: Record<string, string>;
/** Key (from the bucket root) of the tiny database's dump in the all-databases run on s3rver. */
let tinyS3Key: string;

function s3BackupEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...pgEnv(src),
    SCOPE,
    LOGICAL_BACKUP_PROVIDER: 's3',
    LOGICAL_BACKUP_S3_BUCKET: s3.bucket,
    LOGICAL_BACKUP_S3_ENDPOINT: s3.endpoint,
    LOGICAL_BACKUP_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    LOGICAL_BACKUP_S3_SSE: 'AES256',
  };
}

function azBackupEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...pgEnv(src),
    SCOPE,
    LOGICAL_BACKUP_PROVIDER: 'az',
    LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME: az.account,
    LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER: az.container,
    LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY: az.accountKey,
    LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT: az.blobEndpoint,
  };
}

function s3RestoreEnv(over: Record<string, string>): NodeJS.ProcessEnv {
  return { ...restoreEnvFor(s3, dst, 'shop', 'latest'), ...over };
}

function s3Store(): Promise<ObjectStore> {
  return openObjectStore(
    resolveLocation({ provider: 's3', bucket: s3.bucket, prefix: '', endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }, 'test'),
  );
}

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) keys.push(e.object.key);
  return keys.sort();
}

before(async () => {
  [src, dst, s3, az] = await Promise.all([startPostgres({ major: 15 }), startPostgres({ major: 15 }), startS3rver(), startAzurite()]);
  tmp = scratchDir('logical');
  await createDataset(src, 'shop', BIG_ROWS);
  await src.query('CREATE DATABASE tiny');
  await src.query("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'tiny ' || g FROM generate_series(1, 100) g", [], 'tiny');
  expected = await fingerprint(src, 'shop');
  expectedTiny = await fingerprint(src, 'tiny');
});

/** Runs bin/restore.sh on a real pseudo-terminal, answering each prompt in turn; returns the transcript. */
async function restoreOnTerminal(steps: [string, string][], env: Record<string, string>): Promise<{ code: number | null; transcript: string }> {
  const script = join(tmp.path, `answers-${Date.now()}.json`);
  writeFileSync(script, JSON.stringify(steps.map(([expect, send]) => ({ expect, send }))));
  const r = await run('python3', [join(REPO, 'test', 'logical', 'pty-drive.py'), script, '--', RESTORE_SH], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TERM: 'xterm',
    NODE_NO_WARNINGS: '1',
    ...env,
  });
  return { code: r.code, transcript: r.stdout };
}

function reEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

after(async () => {
  await Promise.allSettled([src?.destroy(), dst?.destroy(), s3?.stop(), az?.stop()]);
  tmp?.cleanup();
});

test('every database plus globals to s3rver, listed newest first, restored non-interactively with BACKUP_FILE_PATH=latest', async () => {
  const b = await pgark(['logical', 'backup', '--json'], s3BackupEnv());
  assert.equal(b.code, 0, b.stderr);
  const report = JSON.parse(b.stdout) as { dumps: { key: string; kind: string; database?: string; size: number }[] };
  assert.deepEqual(
    report.dumps.map((d) => d.database ?? d.kind),
    ['globals', 'postgres', 'shop', 'tiny'],
  );
  assert.match(report.dumps[2].key, /^shop-cluster\/logical_backups\/\d{8}T\d{6}Z\/shop\.sql\.gz$/);
  tinyS3Key = `spilo/${report.dumps[3].key}`;
  // Stored under the operator's default prefix, each with its sidecar.
  const store = await s3Store();
  try {
    const keys = await keysOf(store, `spilo/${SCOPE}/`);
    for (const d of report.dumps) {
      assert.ok(keys.includes(`spilo/${d.key}`) && keys.includes(`spilo/${d.key}.meta.json`), `missing ${d.key} or its sidecar in ${keys}`);
    }
  } finally {
    await store.close();
  }

  const r = await run(RESTORE_SH, [], s3RestoreEnv({}));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /restored "spilo\/shop-cluster\/logical_backups\/\d{8}T\d{6}Z\/shop\.sql\.gz" into database "shop".*SHA-256 verified/);
  assert.match(r.stderr, /does not exist and will be created/);
  assert.deepEqual(await fingerprint(dst, 'shop'), expected);
  assert.ok(expected['"public"."big"'].startsWith(`${BIG_ROWS}:`));
});

test('restoring into a non-empty database warns, fails on the first error and commits nothing', async () => {
  await dst.query("CREATE TABLE sales.extra (x int); INSERT INTO sales.extra VALUES (42)", [], 'shop');
  const r = await run(RESTORE_SH, [], s3RestoreEnv({}));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /is not empty/);
  assert.match(r.stderr, /psql exited with status 3[\s\S]*already exists/);
  const [row] = await dst.query<{ n: string }>('SELECT count(*) AS n FROM sales.extra', [], 'shop');
  assert.equal(row.n, '1');
  await dst.query('DROP TABLE sales.extra', [], 'shop');
  assert.deepEqual(await fingerprint(dst, 'shop'), expected);
});

test('non-interactive restore: a missing backup path and an unreachable database are both reported before anything runs', async () => {
  const r = await run(RESTORE_SH, [], s3RestoreEnv({ BACKUP_FILE_PATH: 'spilo/nope/logical_backups/20200101T000000Z/nope.sql.gz', DB_PORT: '1', DB_PASS: 'Secret-Pass-1' }));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /2 problems/);
  assert.match(r.stderr, /backup "spilo\/nope\/logical_backups\/20200101T000000Z\/nope\.sql\.gz" not found/);
  assert.match(r.stderr, /cannot connect to database "shop" on 127\.0\.0\.1:1/);
  assert.doesNotMatch(r.stderr + r.stdout, /Secret-Pass-1|S3RVER/);
});

test('a corrupted dump is detected by its SHA-256 and nothing is committed', async () => {
  const b = await pgark(['logical', 'backup', '--database', 'tiny', '--json', '--scope', 'corrupt'], s3BackupEnv());
  assert.equal(b.code, 0, b.stderr);
  const key = `spilo/${(JSON.parse(b.stdout) as { dumps: { key: string }[] }).dumps[0].key}`;
  const store = await s3Store();
  try {
    const meta = JSON.parse((await store.getBuffer(`${key}.meta.json`)).toString());
    meta.sha256 = '0'.repeat(64);
    await store.put(`${key}.meta.json`, Buffer.from(JSON.stringify(meta)));
  } finally {
    await store.close();
  }
  const r = await run(RESTORE_SH, [], s3RestoreEnv({ BACKUP_FILE_PATH: key, DB_NAME: 'tiny_corrupt' }));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /is corrupt: expected .* SHA-256 0{64}/);
  const tables = await dst.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'", [], 'tiny_corrupt');
  assert.equal(tables[0].n, '0');
});

test('pg_dump failing mid-stream aborts the upload and leaves nothing that looks like a dump', async () => {
  const scope = 'failing';
  const backup = pgark(['logical', 'backup', '--database', 'shop', '--scope', scope], s3BackupEnv());
  // Kill pg_dump's session while it streams the big table: its output so far has already gone to the store.
  let killed = false;
  for (let i = 0; i < 1200 && !killed; i++) {
    const rows = await src.query<{ k: boolean }>(
      "SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity WHERE application_name = 'pg_dump' AND query LIKE 'COPY public.big %'",
    );
    killed = rows.some((r) => r.k);
    if (!killed) await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(killed, 'never saw pg_dump copying public.big');
  const r = await backup;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /pg_dump exited with status 1[\s\S]*(terminat|connection)/i);
  const store = await s3Store();
  try {
    assert.deepEqual(await keysOf(store, `spilo/${scope}/`), []);
  } finally {
    await store.close();
  }
  const list = await pgark(['logical', 'list', '--scope', scope, '--json'], s3BackupEnv());
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
});

test('custom format to Azurite, restored in parallel through the interactive tool on a real terminal', async () => {
  const b = await pgark(['logical', 'backup', '--database', 'shop', '--format', 'custom', '--json'], azBackupEnv());
  assert.equal(b.code, 0, b.stderr);
  const key = (JSON.parse(b.stdout) as { dumps: { key: string }[] }).dumps[0].key;
  assert.match(key, /\/shop\.dump$/);

  const r = await restoreOnTerminal(
    [
      ['Storage provider', '\r'],
      ['Azure storage account name', `${az.account}\r`],
      ['Azure storage account key', `${az.accountKey}\r`],
      ['Azure container', `${az.container}\r`],
      ['Blob service URL', '\r'],
      [`Backup to restore[\\s\\S]*${reEscape(key)}`, '\r'],
      ['Database host', '\r'],
      ['Database port', '\r'],
      ['Database name to restore into', 'shop_az\r'],
      ['Database user', '\r'],
      ['Use DB_PASS from the environment', '\r'],
      ['Start the restore\\?', 'y\r'],
    ],
    {
      STORAGE_PROVIDER: 'azure',
      AZURE_STORAGE_ENDPOINT: az.blobEndpoint,
      ...dbEnv(dst),
      RESTORE_JOBS: '2',
    },
  );
  assert.equal(r.code, 0, r.transcript);
  assert.match(r.transcript, /Restore summary/);
  assert.match(r.transcript, /custom format/);
  assert.match(r.transcript, /database "shop_az" on .* does not exist and will be created/);
  assert.match(r.transcript, /restoring \[#+/, 'no progress bar on the terminal');
  assert.match(r.transcript, /restored ".*shop\.dump" into database "shop_az".*SHA-256 verified/);
  assert.ok(!r.transcript.includes(az.accountKey), 'the account key was echoed on the terminal');
  assert.deepEqual(await fingerprint(dst, 'shop_az'), expected);
});

test('interactive restore from s3rver with a typed path: a wrong path is refused and asked again', async () => {
  const r = await restoreOnTerminal(
    [
      ['Storage provider', '\r'],
      ['AWS access key ID', '\r'],
      ['Use AWS_SECRET_ACCESS_KEY from the environment', '\r'],
      ['S3 bucket', '\r'],
      ['S3 endpoint URL', '\r'],
      [`Backup to restore[\\s\\S]*${reEscape(tinyS3Key)}[\\s\\S]*Type a path`, '\u001b[A\r'],
      ['Backup path in the bucket', 'spilo/no/such.sql.gz\r'],
      ['not found[\\s\\S]*Backup path in the bucket', `${tinyS3Key}\r`],
      ['Database host', '\r'],
      ['Database port', '\r'],
      ['Database name to restore into', '\r'],
      ['Database user', '\r'],
      ['Use DB_PASS from the environment', '\r'],
      ['Start the restore\\?', 'y\r'],
    ],
    { ...s3StoreEnv(s3), ...dbEnv(dst, 'tiny_pty') },
  );
  assert.equal(r.code, 0, r.transcript);
  assert.match(r.transcript, /restored ".*tiny\.sql\.gz" into database "tiny_pty".*SHA-256 verified/);
  assert.deepEqual(await fingerprint(dst, 'tiny_pty'), expectedTiny);
});

test('non-interactive restore from Azurite: "latest" picks the dump of DB_NAME', async () => {
  const b = await pgark(['logical', 'backup', '--database', 'tiny'], azBackupEnv());
  assert.equal(b.code, 0, b.stderr);
  const r = await run(RESTORE_SH, [], {
    PATH: process.env.PATH,
    RESTORE_MODE: 'non-interactive',
    STORAGE_PROVIDER: 'azure',
    AZURE_STORAGE_ACCOUNT_NAME: az.account,
    AZURE_STORAGE_ACCOUNT_KEY: az.accountKey,
    AZURE_STORAGE_CONTAINER_NAME: az.container,
    AZURE_STORAGE_ENDPOINT: az.blobEndpoint,
    AZURE_STORAGE_BACKUP_PATH: 'latest',
    ...dbEnv(dst, 'tiny'),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /restored "spilo\/shop-cluster\/logical_backups\/\d{8}T\d{6}Z\/tiny\.sql\.gz" into database "tiny".*SHA-256 verified/);
  assert.deepEqual(await fingerprint(dst, 'tiny'), expectedTiny);
});

test('zstd plain dumps and custom-format dumps streamed into one pg_restore transaction (RESTORE_JOBS=1) round-trip', async () => {
  for (const [flags, db] of [
    [['--compression', 'zstd'], 'tiny_zstd'],
    [['--format', 'custom'], 'tiny_custom'],
  ] as const) {
    const b = await pgark(['logical', 'backup', '--database', 'tiny', '--scope', db, '--json', ...flags], s3BackupEnv());
    assert.equal(b.code, 0, b.stderr);
    const key = `spilo/${(JSON.parse(b.stdout) as { dumps: { key: string }[] }).dumps[0].key}`;
    assert.match(key, db === 'tiny_zstd' ? /\/tiny\.sql\.zst$/ : /\/tiny\.dump$/);
    const r = await run(RESTORE_SH, [], s3RestoreEnv({ BACKUP_FILE_PATH: key, DB_NAME: db, RESTORE_JOBS: '1' }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SHA-256 verified/);
    assert.deepEqual(await fingerprint(dst, db), expectedTiny);
  }
});

test('retention by age on Azure removes old runs and keeps the newest; list shows newest first with size and age', async () => {
  const env = azBackupEnv();
  const settings = readBackupSettings({ database: 'tiny', scope: 'retained' }, env);
  const day = 86_400_000;
  const now = Date.now();
  const old = await runLogicalBackup(settings, new Date(now - 10 * day));
  const recent = await runLogicalBackup(settings, new Date(now - 3 * day));
  const current = await runLogicalBackup({ ...settings, retention: parseRetention('7 days') }, new Date(now));
  assert.deepEqual(current.deleted, [`${old.dumps[0].key}.meta.json`, old.dumps[0].key]);
  // A second run in the same second would overwrite the first one's dumps: refused before dumping.
  await assert.rejects(runLogicalBackup(settings, new Date(now)), /a logical backup run already exists at retained\/logical_backups\//);

  const list = await pgark(['logical', 'list', '--scope', 'retained'], env);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 2, list.stdout);
  assert.ok(lines[0].endsWith(current.dumps[0].key) && lines[1].endsWith(recent.dumps[0].key), list.stdout);
  assert.match(lines[1], /3d old\s+\d+(\.\d)? (B|KiB)/);
});
