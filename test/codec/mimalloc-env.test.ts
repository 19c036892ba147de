/**
 * The napi-rs modules' mimalloc (snappy, lz4-napi, @node-rs/crc32) commits memory as it is used in
 * the processes that stream for long (backups through the launcher, the agent's backup child, the
 * sidecar, the WAL daemon): LEAN_MALLOC_ENV carries the settings, and they take effect, measured
 * as the resident memory a fresh Node process gains by loading snappy and crc32.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { DAEMON_MALLOC_ENV, LEAN_MALLOC_ENV } from '../../src/util/gc.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK_LAUNCHER } from '../wal/helpers.js';

const MIMALLOC = ['MIMALLOC_ARENA_EAGER_COMMIT', 'MIMALLOC_EAGER_COMMIT'] as const;
const work = scratchDir('mimalloc-env');
after(() => work.cleanup());

function withoutMimalloc(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of MIMALLOC) delete env[name];
  return env;
}

test('the daemon and backup settings ask mimalloc for lazy commit', () => {
  for (const name of MIMALLOC) {
    assert.equal(LEAN_MALLOC_ENV[name], '0');
    assert.equal(DAEMON_MALLOC_ENV[name], '0');
  }
});

test("the launcher gives backup commands mimalloc's lazy commit, keeps a caller's, and gives other commands none", () => {
  const node = join(work.path, 'node');
  writeFileSync(node, '#!/bin/sh\necho "${MIMALLOC_ARENA_EAGER_COMMIT-unset} ${MIMALLOC_EAGER_COMMIT-unset}"\n');
  chmodSync(node, 0o755);
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    execFileSync(PGARK_LAUNCHER, args, { env: { ...withoutMimalloc(), PGARK_NODE: node, ...extra }, encoding: 'utf8' }).trim();
  const lean = MIMALLOC.map((n) => LEAN_MALLOC_ENV[n]).join(' ');
  assert.equal(run(['backup', '-f', 'cluster.yaml']), lean);
  assert.equal(run(['apply', '-f', 'backup.yaml']), lean);
  assert.equal(run(['barman-cloud', 'barman-cloud-backup', 's3://bucket', 'pg']), lean);
  assert.equal(run(['backup', '-f', 'cluster.yaml'], { MIMALLOC_EAGER_COMMIT: '1' }), `${LEAN_MALLOC_ENV.MIMALLOC_ARENA_EAGER_COMMIT} 1`);
  assert.equal(run(['timeline', '-f', 'cluster.yaml']), 'unset unset');
});

/** KiB of resident memory a fresh Node gains by loading snappy and @node-rs/crc32 and using them once. */
function residentForModules(env: NodeJS.ProcessEnv): number {
  const script = `
    const rss = () => Number(require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\\s+(\\d+)/)[1]);
    const before = rss();
    const snappy = require('snappy');
    const { crc32c } = require('@node-rs/crc32');
    crc32c(snappy.compressSync(Buffer.alloc(65536, 1), { copyOutputData: true }));
    console.log(rss() - before);`;
  return Number(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).trim());
}

test('lazy commit lowers what the napi-rs modules keep resident', () => {
  const eager = residentForModules(withoutMimalloc());
  const lazy = residentForModules({ ...withoutMimalloc(), ...LEAN_MALLOC_ENV });
  // Measured here: 9.4 MiB eager, 5.6 lazy (two modules, about 2 MiB each).
  assert.ok(eager - lazy >= 2048, `loading snappy and crc32: ${eager} KiB eager, ${lazy} KiB lazy`);
});
