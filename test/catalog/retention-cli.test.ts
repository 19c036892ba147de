process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { basePrefix, walsPrefix } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import { startStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { allKeys } from './synthetic.js';
import { populate, scenario } from './scenarios.js';

function pgark(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/pgark.js', ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('pgark retention: --dry-run prints the plan and deletes nothing, --json, then a real run deletes it (s3rver)', async () => {
  const ts = await startStore('s3');
  const dir = scratchDir('retention-cli');
  const store = await openObjectStore(ts.resolved('pg'));
  try {
    const s = scenario(Date.now());
    await populate(store, s);
    const manifest = join(dir.path, 'cluster.yaml');
    writeFileSync(manifest, ts.manifest({ clusterName: 'pg', backup: { retentionPolicy: '30d' } }));
    const before = await allKeys(store, '');

    const dry = pgark(['retention', '-f', manifest, '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /Retention of server "pg" in s3:\/\/.*: 30d \(RECOVERY WINDOW OF 30 DAYS\)/);
    for (const id of [s.backups[0].id, s.backups[3].id, s.backups[4].id]) assert.match(dry.stdout, new RegExp(`${id} .*DELETE`));
    assert.match(dry.stdout, new RegExp(`${s.backups[2].id} .*keep .*keep:standalone annotation`));
    assert.match(dry.stdout, new RegExp(`${s.backups[1].id} .*FAILED .*retention deletes DONE backups only`));
    assert.match(dry.stdout, /WAL to delete: \d+ files in 3 range\(s\)/);
    assert.match(dry.stdout, /timeline 00000001  000000010000000000000001 \.\. 000000010000000000000005/);
    assert.match(dry.stdout, /First recoverability point: \S+ before, \S+ after/);
    assert.match(dry.stdout, /Dry run: nothing deleted\./);
    assert.doesNotMatch(dry.stdout + dry.stderr, new RegExp(ts.secretValues.ACCESS_SECRET_KEY));
    assert.deepEqual(await allKeys(store, ''), before);

    const json = pgark(['retention', '-f', manifest, '--dry-run', '--json']);
    assert.equal(json.status, 0, json.stderr);
    const plan = JSON.parse(json.stdout);
    assert.equal(plan.applied, false);
    assert.equal(plan.policy, '30d');
    assert.deepEqual(
      plan.backups.filter((b: { decision: string }) => b.decision === 'delete').map((b: { backupId: string }) => b.backupId),
      [s.backups[0].id, s.backups[3].id, s.backups[4].id],
    );
    assert.ok(plan.bytesFreed > 0);
    assert.equal(plan.firstRecoverabilityAfter, s.backups[2].endTime.toISOString(), 'the keep:standalone backup is the oldest DONE one left');

    const real = pgark(['retention', '-f', manifest, '--json']);
    assert.equal(real.status, 0, real.stderr);
    assert.equal(JSON.parse(real.stdout).applied, true);
    const baseIds = new Set((await allKeys(store, basePrefix('pg'))).map((k) => k.split('/')[2]));
    assert.deepEqual([...baseIds].sort(), [1, 2, 5, 6, 7, 8].map((i) => s.backups[i].id).sort());
    assert.equal((await allKeys(store, walsPrefix('pg'))).length, s.wals.length - plan.walFilesDeleted);

    // Bad input: exit 2 and a clear message.
    writeFileSync(manifest, ts.manifest({ clusterName: 'pg', backup: { retentionPolicy: '30d' } }));
    const bad = pgark(['retention', '-f', manifest, '--policy', '30 days']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /invalid retentionPolicy "30 days" \(expected a number of days, weeks or months: e\.g\. 30d, 4w, 2m\)/);
  } finally {
    await store.close();
    await ts.stop();
    dir.cleanup();
  }
});
