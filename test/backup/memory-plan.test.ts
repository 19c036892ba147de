/**
 * The memory a backup process plans for (src/config/memory.ts backupMemory, backup/run.ts
 * takeBackupWithin) and what the launcher gives it (bin/pgark: glibc's malloc setting). The peaks
 * these bring under 160 MiB are measured by bench/backup.ts, not here: this keeps the mechanisms
 * from regressing.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKUP_DEFAULT_BUDGET, backupMemory, PART } from '../../src/config/memory.js';
import { LEAN_MALLOC_ENV } from '../../src/util/gc.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK_LAUNCHER } from '../wal/helpers.js';

const MiB = 1024 * 1024;
const work = scratchDir('backup-memory-plan');
after(() => work.cleanup());

test('a backup with no budget and no container limit plans for the default budget; a limit or PGARK_MEMORY_BUDGET wins', () => {
  const unlimited = backupMemory({}, () => undefined);
  assert.deepEqual(unlimited.budget, { bytes: BACKUP_DEFAULT_BUDGET, from: 'default' });
  const sizes = unlimited.backupUpload(2);
  assert.equal(sizes.partSize, PART);
  // 160 MiB leaves 64 over the idle process: 6 upload slots, both parts of data.tar at once, one part in flight each.
  assert.deepEqual({ queueSize: sizes.queueSize, maxParts: sizes.maxParts }, { queueSize: 2, maxParts: 2 });

  assert.deepEqual(backupMemory({}, () => 3 * 256 * MiB).budget, { bytes: 512 * MiB, from: 'cgroup' });
  assert.deepEqual(backupMemory({ PGARK_MEMORY_BUDGET: '1Gi' }, () => 3 * 256 * MiB).budget, { bytes: 1024 * MiB, from: 'PGARK_MEMORY_BUDGET' });
  // A roomy budget: each of data.tar's two parts uploads as many parts at once as there are jobs.
  assert.equal(backupMemory({ PGARK_MEMORY_BUDGET: '4Gi' }, () => undefined).backupUpload(2).queueSize, 2 * 2);
});

test("the launcher gives backup commands glibc's lean malloc setting, keeps a caller's, and gives other commands none", () => {
  // A stand-in for node that prints the setting it was started with.
  const node = join(work.path, 'node');
  writeFileSync(node, '#!/bin/sh\necho "${MALLOC_MMAP_THRESHOLD_-unset}"\n');
  chmodSync(node, 0o755);
  const env: NodeJS.ProcessEnv = { ...process.env, PGARK_NODE: node };
  delete env.MALLOC_MMAP_THRESHOLD_;
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) => execFileSync(PGARK_LAUNCHER, args, { env: { ...env, ...extra }, encoding: 'utf8' }).trim();

  assert.equal(run(['backup', '-f', 'cluster.yaml']), LEAN_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
  assert.equal(run(['apply', '-f', 'backup.yaml']), LEAN_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
  assert.equal(run(['barman-cloud', 'barman-cloud-backup', 's3://bucket', 'pg']), LEAN_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
  assert.equal(run(['backup', '-f', 'cluster.yaml'], { MALLOC_MMAP_THRESHOLD_: '1048576' }), '1048576');
  assert.equal(run(['backup', 'list', '-f', 'cluster.yaml']), LEAN_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
  assert.equal(run(['timeline', '-f', 'cluster.yaml']), 'unset');
  assert.equal(run(['barman-cloud', 'barman-cloud-backup-list', 's3://bucket', 'pg']), 'unset');
});
