#!/usr/bin/env node
// Runs every compiled test file with Node's own test runner.
// PGARK_TEST_FILTER=substring narrows the files; PGARK_TEST_CONCURRENCY sets how many files run at once;
// PGARK_TEST_TAP=FILE also writes the TAP report (every test's duration, with the file of each failure) to FILE.
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.env.PGARK_TEST_FILTER;
const files = walk('dist/test').filter((f) => !filter || f.includes(filter)).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.PGARK_TEST_CONCURRENCY ?? '2';
// One initdb per PostgreSQL build and arguments for the whole run (test/harness/initdb-template.ts).
const templates = mkdtempSync(join(tmpdir(), 'pgark-initdb-templates-'));
chmodSync(templates, 0o755);
// Ctrl-C reaches the test runner too; this process stays to remove the templates after it.
process.on('SIGINT', () => undefined);
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout'];
if (process.env.PGARK_TEST_TAP) reporters.push('--test-reporter=tap', `--test-reporter-destination=${process.env.PGARK_TEST_TAP}`);
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...reporters, ...files], {
  stdio: 'inherit',
  env: { ...process.env, PGARK_TEST_INITDB_TEMPLATES: templates },
});
rmSync(templates, { recursive: true, force: true });
process.exit(r.status ?? 1);
