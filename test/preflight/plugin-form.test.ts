/**
 * `pgark check` on plugin-form manifests (the real CLI against s3rver): the seed's S3 recovery
 * manifest pointed at s3rver and turned into ObjectStores by `pgark migrate` passes with both its
 * stores, rows named by ObjectStore and ObjectStores counted in the summary; a reference to an
 * ObjectStore not passed with -f is exit 2 at file:line:col listing the ones found; a Cluster with
 * no store in either form fails the object store row naming both forms.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { scratchDir } from '../harness/tmp.js';

let s3: S3rver;
const dir = scratchDir('check-plugin-form');

before(async () => {
  s3 = await startS3rver();
});
after(async () => {
  await s3?.stop();
  dir.cleanup();
});

function pgark(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir.path, NODE_NO_WARNINGS: '1' };
  for (const k of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGARK_CONFIG', 'KUBECONFIG', 'KUBERNETES_SERVICE_HOST']) delete env[k];
  return spawnSync(process.execPath, ['bin/pgark.js', ...args], { encoding: 'utf8', env, timeout: 120_000 });
}

function row(out: string, check: string): string {
  const line = out.split('\n').find((l) => l.startsWith(check + ' '));
  assert.ok(line, `no row "${check}" in:\n${out}`);
  return line;
}

function write(name: string, text: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

test("the seed's S3 recovery manifest, migrated to ObjectStores, passes check with both stores", () => {
  const seed = readFileSync('test/fixtures/manifests/seed/recovery-s3.yaml', 'utf8')
    .replaceAll('s3://your-backup-bucket-name', `s3://${s3.bucket}/seed`)
    .replaceAll('https://s3.your-provider.com', s3.endpoint);
  const input = write('recovery-s3.yaml', seed);
  const out = join(dir.path, 'migrated');
  const m = pgark(['migrate', '-f', input, '-o', out]);
  assert.equal(m.status, 0, m.stderr);
  const migrated = join(out, 'recovery-s3.yaml');
  assert.doesNotMatch(readFileSync(migrated, 'utf8'), /barmanObjectStore/);

  const r = pgark(['check', '-f', migrated]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(row(r.stdout, 'manifests'), /OK\s+valid: 1 Cluster, 1 Secret, 2 ObjectStore$/);
  assert.doesNotMatch(row(r.stdout, 'ignored fields'), /plugin/);
  assert.match(row(r.stdout, 'backup store (ObjectStore oncall-pgsql-v2-store): credentials'), /accessKeyId, secretAccessKey from Secret backup-creds/);
  assert.match(row(r.stdout, 'backup store (ObjectStore oncall-pgsql-v2-store): write+delete'), /OK\s+probe object written and deleted under oncall-pgsql-v2\//);
  assert.match(row(r.stdout, 'recovery source oncall-pgsql-old (ObjectStore oncall-pgsql-old-store): list'), /OK .*under oncall-pgsql-old\//);
  assert.ok(!r.stdout.includes('recovery source oncall-pgsql-old (ObjectStore oncall-pgsql-old-store): write'), 'a recovery source is never written to');
  assert.ok(!r.stdout.includes('S3RVER'), 'no secret value printed');
});

test('a barmanObjectName that names no ObjectStore of -f: exit 2 at file:line:col, the ObjectStores found listed', () => {
  const file = write(
    'missing.yaml',
    `apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: minio-store}
spec:
  configuration:
    destinationPath: s3://${s3.bucket}/x
    s3Credentials: {inheritFromIAMRole: true}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      parameters:
        barmanObjectName: minio-stor
`,
  );
  const r = pgark(['check', '-f', file]);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:16:27: spec\\.plugins\\[0\\]\\.parameters\\.barmanObjectName: no ObjectStore named "minio-stor" among the manifests`));
  assert.match(r.stderr, /hint: ObjectStores found: minio-store/);
});

test('a Cluster with no store in either form fails the object store row, naming both forms', () => {
  const file = write(
    'none.yaml',
    `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  plugins: [{name: other.example.com, isWALArchiver: true}]
`,
  );
  const r = pgark(['check', '-f', file]);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(row(r.stdout, 'object store'), /FAIL\s+Cluster "pg" has no store: neither spec\.backup\.barmanObjectStore, nor a spec\.plugins entry for pgark\.io or barman-cloud\.cloudnative-pg\.io/);
  assert.match(r.stdout, /hint: add spec\.backup\.barmanObjectStore .*, or spec\.plugins: \[\{name: pgark\.io, isWALArchiver: true/);
});
