/**
 * `pgark check` end to end: the real CLI (node bin/pgark.js) against s3rver and Azurite with every
 * credential form, the seed's manifests pointed at s3rver, the failures a user meets (wrong key,
 * missing bucket, unreachable endpoint, invalid manifest) and a real PostgreSQL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startAzurite, type Azurite } from '../harness/azurite.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { startPostgres } from '../harness/postgres.js';

let s3: S3rver;
let azurite: Azurite;
let dir: { path: string; cleanup(): void };

before(async () => {
  dir = scratchDir('check');
  [s3, azurite] = await Promise.all([startS3rver(), startAzurite()]);
});
after(async () => {
  await Promise.all([s3?.stop(), azurite?.stop()]);
  dir?.cleanup();
});

/** PG* variables are cleared so that only the flags a test passes point at a server. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir.path, NODE_NO_WARNINGS: '1' };
  for (const k of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD', 'PGARK_CONFIG', 'KUBECONFIG', 'KUBERNETES_SERVICE_HOST']) delete env[k];
  // With no PG* variables and no flags, PostgreSQL is optional: libpq's default (localhost:5432,
  // where nothing listens on this machine) gives a SKIP row, not a failure.
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pgark(args: string[], env = cleanEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/pgark.js', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let counter = 0;
function writeManifest(text: string): string {
  const file = join(dir.path, `m${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

function expectExit(r: Run, code: number): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`);
}

function row(out: string, check: string): string {
  const line = out.split('\n').find((l) => l.startsWith(check + ' '));
  assert.ok(line, `no row "${check}" in:\n${out}`);
  return line;
}

/** Values that must never be printed; the account name is part of the destination URL, so it is not one. */
function secretValuesOf(store: TestStore): string[] {
  return Object.values(store.secretValues).filter((v) => !store.destinationPath.includes(v));
}

const FORMS: StoreKind[] = ['file', 's3', 'azure-connection-string', 'azure-key', 'azure-sas'];

for (const kind of FORMS) {
  test(`check passes on ${kind}, names the credential source, and prints no secret`, async () => {
    const store: TestStore = await startStore(kind, { s3rver: s3, azurite });
    try {
      const file = writeManifest(store.manifest({ clusterName: 'pg', spec: { imageName: 'ghcr.io/cloudnative-pg/postgresql:17' } }));
      const r = await pgark(['check', '-f', file]);
      expectExit(r, 0);
      assert.match(row(r.stdout, 'manifests'), /OK\s+valid: 1 Cluster/);
      assert.match(row(r.stdout, 'ignored fields'), /spec\.instances, spec\.imageName/);
      const cred = row(r.stdout, 'backup store: credentials');
      if (kind === 'file') assert.match(cred, /OK\s+none: local file:\/\/ store$/);
      else assert.match(cred, new RegExp(`OK\\s+(s3|azure)Credentials: .* from Secret ${store.secretName} \\(${file.replace(/[.]/g, '\\.')}\\)`));
      assert.match(row(r.stdout, 'backup store: list'), /OK/);
      assert.match(row(r.stdout, 'backup store: write+delete'), /OK\s+probe object written and deleted under pg\//);
      assert.match(row(r.stdout, 'postgresql'), /SKIP/);
      assert.match(r.stdout, /OK: cluster pg is ready for pgark/);
      for (const v of secretValuesOf(store)) {
        assert.ok(!r.stdout.includes(v) && !r.stderr.includes(v), 'a secret value was printed');
      }
      const j = await pgark(['check', '-f', file, '--json']);
      expectExit(j, 0);
      const report = JSON.parse(j.stdout) as { ok: boolean; cluster: string; rows: { check: string; status: string }[] };
      assert.equal(report.ok, true);
      assert.equal(report.cluster, 'pg');
      assert.ok(report.rows.some((x) => x.check === 'backup store: write+delete' && x.status === 'ok'));
      for (const v of secretValuesOf(store)) assert.ok(!j.stdout.includes(v));
    } finally {
      await store.stop();
    }
  });
}

function seedPointedAtS3rver(name: string, bucketUrl: string, endpoint: string): string {
  const prefix = `seed-${++counter}`;
  return readFileSync(`test/fixtures/manifests/seed/${name}`, 'utf8')
    .replaceAll(bucketUrl, `s3://${s3.bucket}/${prefix}`)
    .replaceAll(endpoint, s3.endpoint);
}

test("the seed's S3 manifests, pointed at s3rver, pass check (backup store and recovery source)", async () => {
  const recovery = writeManifest(seedPointedAtS3rver('recovery-s3.yaml', 's3://your-backup-bucket-name', 'https://s3.your-provider.com'));
  const r = await pgark(['check', '-f', recovery]);
  expectExit(r, 0);
  assert.match(row(r.stdout, 'backup store: credentials'), /accessKeyId, secretAccessKey from Secret backup-creds/);
  assert.match(row(r.stdout, 'backup store: write+delete'), /under oncall-pgsql-v2\//);
  assert.match(row(r.stdout, 'recovery source oncall-pgsql-old: list'), /OK .*under oncall-pgsql-old\//);
  assert.ok(!r.stdout.includes('recovery source oncall-pgsql-old: write'), 'a recovery source is never written to');
  assert.match(row(r.stdout, 'ignored fields'), /spec\.imageName, spec\.instances/);

  const backup = writeManifest(seedPointedAtS3rver('s3-backup.yaml', 's3://grafana-backup/backups', 'https://s3.storage.foo.bar'));
  const b = await pgark(['check', '-f', backup]);
  expectExit(b, 0);
  assert.match(row(b.stdout, 'backup store: credentials'), /from Secret s3-creds/);
});

async function failingCheck(manifest: string): Promise<Run> {
  const r = await pgark(['check', '-f', writeManifest(manifest)]);
  expectExit(r, 2);
  assert.match(r.stdout, /FAILED: fix the rows marked FAIL/);
  return r;
}

test('a wrong key fails clearly on S3 and on Azure', async () => {
  const s3store = await startStore('s3', { s3rver: s3 });
  // s3rver knows one key pair; an unknown access key id is what it rejects.
  const r = await failingCheck(s3store.manifest({ clusterName: 'pg' }).replace(`ACCESS_KEY_ID: ${s3.accessKeyId}`, 'ACCESS_KEY_ID: NOT-THE-KEY-ID'));
  assert.match(row(r.stdout, 'backup store: access'), /FAIL\s+wrong credentials: /);
  assert.match(r.stdout, /hint: check the access key/);
  const az = await startStore('azure-key', { azurite });
  const wrongKey = Buffer.from('not the account key').toString('base64');
  const a = await failingCheck(az.manifest({ clusterName: 'pg' }).replace(azurite.accountKey, wrongKey));
  assert.match(row(a.stdout, 'backup store: access'), /FAIL\s+wrong credentials: /);
  assert.ok(!a.stdout.includes(wrongKey));
});

test('a missing bucket or container fails clearly', async () => {
  const s3store = await startStore('s3', { s3rver: s3 });
  const r = await failingCheck(s3store.manifest({ clusterName: 'pg' }).replace(`s3://${s3.bucket}/`, 's3://no-such-bucket/'));
  assert.match(row(r.stdout, 'backup store: access'), /FAIL\s+missing bucket\/container: .*no-such-bucket/);
  const az = await startStore('azure-connection-string', { azurite });
  const a = await failingCheck(az.manifest({ clusterName: 'pg' }).replace(`/${azurite.container}/`, '/no-such-container/'));
  assert.match(row(a.stdout, 'backup store: access'), /FAIL\s+missing bucket\/container: /);
});

test('an unreachable endpoint fails clearly', async () => {
  const port = await freePort();
  const s3store = await startStore('s3', { s3rver: s3 });
  const r = await failingCheck(s3store.manifest({ clusterName: 'pg' }).replace(s3.endpoint, `http://127.0.0.1:${port}`));
  assert.match(row(r.stdout, 'backup store: access'), /FAIL\s+endpoint unreachable: .*ECONNREFUSED/);
  assert.match(r.stdout, /hint: check endpointURL/);
});

test('a data compression only pgark reads is a warning, not a failure', async () => {
  const store = await startStore('file');
  try {
    const r = await pgark(['check', '-f', writeManifest(store.manifest({ clusterName: 'pg', objectStore: { data: { compression: 'zstd' } } }))]);
    expectExit(r, 0);
    assert.match(row(r.stdout, 'barman-cloud compatibility'), /WARN\s+data\.compression zstd is a pgark extension/);
  } finally {
    await store.stop();
  }
});

test('a missing secret fails the credentials row naming the secret and key', async () => {
  const s3store = await startStore('s3', { s3rver: s3 });
  const manifest = s3store.manifest({ clusterName: 'pg' }).split('---\n')[0];
  const r = await failingCheck(manifest);
  assert.match(row(r.stdout, 'backup store: credentials'), /FAIL\s+\S+\.yaml:\d+:\d+: spec\.backup\.barmanObjectStore\.s3Credentials\.accessKeyId\.key: secret "pgark-store-credentials" key "ACCESS_KEY_ID" not found; tried: /);
});

test('invalid manifests exit 2 with file:line:column, field path and hint; --json lists the issues', async () => {
  const file = 'test/fixtures/manifests/seed/verbatim/azure-backup.yaml';
  const r = await pgark(['check', '-f', file]);
  expectExit(r, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`${file}:11:24: spec\\.backup\\.barmanObjectStore\\.destinationPath: destinationPath "s3://grafana-backup/backups" is an s3:// URL but the credentials are azureCredentials`));
  assert.match(r.stderr, /hint: either write destinationPath as https:\/\/ACCOUNT\.blob\.core\.windows\.net/);
  const j = await pgark(['check', '-f', 'test/fixtures/manifests/seed/verbatim/recovery-s3.yaml', '--json']);
  expectExit(j, 2);
  const body = JSON.parse(j.stdout) as { ok: boolean; issues: { path: string; hint: string; position: { line: number } }[] };
  assert.equal(body.ok, false);
  assert.deepEqual(
    body.issues.map((i) => [i.position.line, i.path]),
    [
      [24, 'spec.externalClusters[0].barmanObjectStore.endpointURL'],
      [38, 'spec.backup.barmanObjectStore.endpointURL'],
    ],
  );
  assert.match(body.issues[0].hint, /looks like a Markdown link; write the bare URL: https:\/\/s3\.your-provider\.com/);
});

test('PostgreSQL: version and archiving settings are reported; an unreachable explicit server fails', async () => {
  const pg = await startPostgres({ major: 17 });
  const store = await startStore('file');
  try {
    const file = writeManifest(store.manifest({ clusterName: 'pg', spec: { imageName: 'ghcr.io/cloudnative-pg/postgresql:16' } }));
    const flags = ['--pghost', pg.host, '--pgport', String(pg.port), '--pguser', pg.env.PGUSER ?? 'postgres'];
    const r = await pgark(['check', '-f', file, ...flags]);
    expectExit(r, 0);
    assert.match(row(r.stdout, 'postgresql'), /WARN\s+PostgreSQL 17\.\d+ at .*; imageName says PostgreSQL 16/);
    assert.match(row(r.stdout, 'wal_level'), /OK\s+replica/);
    assert.match(row(r.stdout, 'archive_mode'), /WARN\s+off: no WAL is archived/);
    assert.match(row(r.stdout, 'archive_command'), /WARN/);

    pg.configure({ archive_mode: 'on', archive_command: 'pgark wal-archive -f /etc/pgark/cluster.yaml %p' });
    await pg.stop();
    await pg.start();
    const on = await pgark(['check', '-f', file, ...flags]);
    assert.match(row(on.stdout, 'archive_mode'), /OK\s+on/);
    assert.match(row(on.stdout, 'archive_command'), /OK\s+pgark wal-archive/);

    const down = await pgark(['check', '-f', file, '--pghost', '127.0.0.1', '--pgport', String(await freePort())]);
    expectExit(down, 2);
    assert.match(row(down.stdout, 'postgresql'), /FAIL\s+cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ as /);
  } finally {
    await pg.destroy();
    await store.stop();
  }
});
