/** Non-interactive validation of bin/restore.sh: every missing or invalid variable is named, with its purpose. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESTORE_VARIABLES } from '../../src/logical/restore-env.js';
import { RESTORE_SH, run } from './helpers.js';

const SECRET = 'Sup3r-Secret-Value';

const S3_ENV = {
  RESTORE_MODE: 'non-interactive',
  STORAGE_PROVIDER: 's3',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: SECRET,
  LOGICAL_BACKUP_S3_BUCKET: 'bucket',
  BACKUP_FILE_PATH: 'spilo/x/logical_backups/20260101T000000Z/db.sql.gz',
  LOGICAL_BACKUP_S3_ENDPOINT: 'http://127.0.0.1:1',
  DB_NAME: 'db',
  DB_USER: 'postgres',
  DB_PASS: SECRET,
  DB_HOST: '127.0.0.1',
  DB_PORT: '5432',
};
const AZURE_ENV = {
  RESTORE_MODE: 'non-interactive',
  STORAGE_PROVIDER: 'azure',
  AZURE_STORAGE_ACCOUNT_NAME: 'acct',
  AZURE_STORAGE_ACCOUNT_KEY: SECRET,
  AZURE_STORAGE_CONTAINER_NAME: 'backups',
  AZURE_STORAGE_BACKUP_PATH: 'spilo/x/logical_backups/20260101T000000Z/db.sql.gz',
  DB_NAME: 'db',
  DB_USER: 'postgres',
  DB_PASS: SECRET,
  DB_HOST: '127.0.0.1',
  DB_PORT: '5432',
};
const DB_VARS = ['DB_NAME', 'DB_USER', 'DB_PASS', 'DB_HOST', 'DB_PORT'] as const;

/** The environment without anything restore-related inherited from the test runner. */
function cleanEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return { ...env, ...vars };
}

function without<T extends Record<string, string>>(env: T, name: string): Record<string, string> {
  const copy: Record<string, string> = { ...env };
  delete copy[name];
  return copy;
}

interface Case {
  name: string;
  env: Record<string, string>;
  /** Variables that must each be named as missing / invalid. */
  missing: string[];
  invalid: string[];
}

const cases: Case[] = [
  { name: 'nothing set but the mode', env: { RESTORE_MODE: 'non-interactive' }, missing: ['STORAGE_PROVIDER', ...DB_VARS], invalid: [] },
  {
    name: 's3 with no S3 variables',
    env: { RESTORE_MODE: 'non-interactive', STORAGE_PROVIDER: 's3' },
    missing: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'LOGICAL_BACKUP_S3_BUCKET', 'BACKUP_FILE_PATH', ...DB_VARS],
    invalid: [],
  },
  {
    name: 'azure with no Azure variables',
    env: { RESTORE_MODE: 'non-interactive', STORAGE_PROVIDER: 'azure' },
    missing: ['AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_STORAGE_ACCOUNT_KEY', 'AZURE_STORAGE_CONTAINER_NAME', 'AZURE_STORAGE_BACKUP_PATH', ...DB_VARS],
    invalid: [],
  },
  { name: 'wrong provider', env: { ...S3_ENV, STORAGE_PROVIDER: 'gcs' }, missing: [], invalid: ['STORAGE_PROVIDER'] },
  { name: 'wrong mode', env: { ...S3_ENV, RESTORE_MODE: 'batch' }, missing: [], invalid: ['RESTORE_MODE'] },
  { name: 'port not a number', env: { ...S3_ENV, DB_PORT: 'fivefourthreetwo' }, missing: [], invalid: ['DB_PORT'] },
  { name: 'port out of range', env: { ...S3_ENV, DB_PORT: '70000' }, missing: [], invalid: ['DB_PORT'] },
  { name: 'port zero', env: { ...AZURE_ENV, DB_PORT: '0' }, missing: [], invalid: ['DB_PORT'] },
  { name: 'endpoint not a URL', env: { ...S3_ENV, LOGICAL_BACKUP_S3_ENDPOINT: 'minio:9000' }, missing: [], invalid: ['LOGICAL_BACKUP_S3_ENDPOINT'] },
  // The invalid value is shown, less any credentials in it (checked by the SECRET scan below).
  { name: 'endpoint with credentials, not http', env: { ...S3_ENV, LOGICAL_BACKUP_S3_ENDPOINT: `ftp://user:${SECRET}@minio:9000` }, missing: [], invalid: ['LOGICAL_BACKUP_S3_ENDPOINT'] },
  {
    name: 'several problems at once',
    env: { ...without(without(S3_ENV, 'LOGICAL_BACKUP_S3_BUCKET'), 'DB_USER'), DB_PORT: '-1', LOGICAL_BACKUP_S3_ENDPOINT: 'ftp://x' },
    missing: ['LOGICAL_BACKUP_S3_BUCKET', 'DB_USER'],
    invalid: ['DB_PORT', 'LOGICAL_BACKUP_S3_ENDPOINT'],
  },
  // Each required variable left out alone, for both providers.
  ...Object.keys(S3_ENV)
    .filter((v) => v !== 'RESTORE_MODE' && v !== 'LOGICAL_BACKUP_S3_ENDPOINT')
    .map((v) => ({ name: `s3 without ${v}`, env: without(S3_ENV, v), missing: [v], invalid: [] })),
  ...Object.keys(AZURE_ENV)
    .filter((v) => v !== 'RESTORE_MODE')
    .map((v) => ({ name: `azure without ${v}`, env: without(AZURE_ENV, v), missing: [v], invalid: [] })),
];

for (const c of cases) {
  test(`restore.sh non-interactive: ${c.name}`, async () => {
    const r = await run(RESTORE_SH, [], cleanEnv(c.env));
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 2, out);
    const named = [...out.matchAll(/^ {2}([A-Z0-9_]+): (missing|invalid)/gm)].map((m) => `${m[1]}:${m[2]}`).sort();
    const expected = [...c.missing.map((v) => `${v}:missing`), ...c.invalid.map((v) => `${v}:invalid`)].sort();
    assert.deepEqual(named, expected, out);
    for (const v of [...c.missing, ...c.invalid]) {
      assert.ok(out.includes(RESTORE_VARIABLES[v as keyof typeof RESTORE_VARIABLES]), `purpose of ${v} missing from:\n${out}`);
    }
    assert.ok(!out.includes(SECRET), 'a secret value was printed');
  });
}

test('restore.sh non-interactive: "az" is accepted as the backup job spells it', async () => {
  const r = await run(RESTORE_SH, [], cleanEnv({ ...AZURE_ENV, STORAGE_PROVIDER: 'az', DB_PORT: 'x' }));
  assert.equal(r.code, 2);
  assert.doesNotMatch(r.stderr, /STORAGE_PROVIDER/);
  assert.match(r.stderr, /DB_PORT: invalid/);
});

test('restore.sh interactive without a terminal says how to run non-interactively', async () => {
  const r = await run(RESTORE_SH, [], cleanEnv({}));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /interactive restore needs a terminal/);
  assert.match(r.stderr, /RESTORE_MODE=non-interactive/);
});
