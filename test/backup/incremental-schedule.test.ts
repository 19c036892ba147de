/**
 * Scheduled incrementals: a ScheduledBackup's `pgark.io/backup-type` and `pgark.io/full-every`
 * annotations are validated at file:line:col, and the agent's backup process (backup-child.ts,
 * run through runBackupProcess as the cluster worker runs it, on a real PostgreSQL 15 and s3rver)
 * takes a full backup when there is none, incrementals after it, and a full again once the newest
 * full is older than full-every. The scheduler's timing itself is the agent tests' subject.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { listIncrementals } from '../../src/catalog/incremental.js';
import { runBackupProcess } from '../../src/agent/backup-process.js';
import { scheduledBackupType } from '../../src/agent/backup-type.js';
import { backupRotation } from '../../src/config/backup-rotation.js';
import { emptyBackupInfo } from '../../src/catalog/backup-info.js';
import { PyDateTime } from '../../src/catalog/pytime.js';
import { backdate } from '../catalog/scenarios.js';
import { scheduledBackupYaml } from '../agent/helpers.js';
import { insertBatch, pgark, startOrigin, type Origin } from '../recovery/helpers.js';

const DAY = 86_400_000;

function rotationYaml(name: string, annotations: Record<string, string>): string {
  const yaml = scheduledBackupYaml(name, 'sched', '0 0 0 * * *');
  const lines = Object.entries(annotations).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return yaml.replace(`  name: ${name}\n`, `  name: ${name}\n  annotations:\n${lines.join('\n')}\n`);
}

describe('scheduled incrementals (pgark.io/backup-type, pgark.io/full-every)', () => {
  const dir = scratchDir('incr-schedule');
  let store: TestStore;
  let origin: Origin;

  before(async () => {
    store = await startStore('s3');
    origin = await startOrigin(store, { clusterName: 'sched' });
  });
  after(async () => {
    await origin?.pg.destroy();
    await store?.stop();
    dir.cleanup();
  });

  it('bad annotations are refused at file:line:col with the field path and what was expected', async () => {
    const file = join(dir.path, 'bad.yaml');
    writeFileSync(file, rotationYaml('bad', { 'pgark.io/backup-type': 'incrementl', 'pgark.io/full-every': '7 days' }));
    const r = await pgark(['schedule', 'next', '-f', origin.manifest, '-f', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bad\.yaml:6:\d+: metadata\.annotations\.pgark\.io\/backup-type: unknown backup type "incrementl" \(expected full or incremental\)/);
    assert.match(r.stderr, /bad\.yaml:7:\d+: metadata\.annotations\.pgark\.io\/full-every: invalid interval "7 days"/);

    writeFileSync(file, rotationYaml('bad', { 'pgark.io/full-every': '7d' }));
    const lonely = await pgark(['schedule', 'next', '-f', origin.manifest, '-f', file]);
    assert.notEqual(lonely.code, 0);
    assert.match(lonely.stderr, /applies to incremental schedules only/);
  });

  it('the rotation: full without annotations, incremental after a full, full again when the newest full is older than full-every', () => {
    const meta = (annotations?: Record<string, string>) => ({ metadata: { name: 'x', annotations } });
    const full = (daysAgo: number) => {
      const b = { ...emptyBackupInfo(`202601${20 - daysAgo}T000000`), status: 'DONE' as const };
      b.end_time = PyDateTime.fromDate(new Date(Date.now() - daysAgo * DAY));
      return b;
    };
    const now = new Date();
    assert.equal(scheduledBackupType(backupRotation(meta()), [full(1)], now), 'full');
    const weekly = backupRotation(meta({ 'pgark.io/backup-type': 'incremental', 'pgark.io/full-every': '1w' }));
    assert.equal(weekly.fullEveryMs, 7 * DAY);
    assert.equal(scheduledBackupType(weekly, [], now), 'full');
    assert.equal(scheduledBackupType(weekly, [full(8), full(2)], now), 'incremental');
    assert.equal(scheduledBackupType(weekly, [full(8)], now), 'full');
    assert.equal(scheduledBackupType(backupRotation(meta({ 'pgark.io/backup-type': 'incremental' })), [full(9)], now), 'incremental');
  });

  it("the agent's backup process follows the rotation on a real server", async () => {
    const sbFile = join(dir.path, 'nightly.yaml');
    writeFileSync(sbFile, rotationYaml('nightly', { 'pgark.io/backup-type': 'incremental', 'pgark.io/full-every': '7d' }));
    const s = await openObjectStore(store.resolved('sched'));
    const env = origin.pg.env;
    const take = async (n: number) => {
      await insertBatch(origin.pg, n);
      const outcome = await runBackupProcess(
        {
          files: [origin.manifest, sbFile],
          cluster: 'sched',
          name: `nightly-${n}`,
          scheduledBackup: 'nightly',
          pg: { pghost: env.PGHOST, pgport: env.PGPORT, pguser: env.PGUSER, pgdata: origin.pg.pgdata },
        },
        new AbortController().signal,
      );
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.message);
      return outcome.backupId;
    };
    try {
      const first = await take(1);
      const second = await take(2);
      await backdate(s, 'sched', first, 8);
      const third = await take(3);
      const fulls = (await listBackups(s, 'sched')).backups.map((b) => b.backup_id);
      const incrementals = (await listIncrementals(s, 'sched')).backups.map((b) => [b.backup_id, b.parent_backup_id]);
      assert.deepEqual(fulls, [first, third]);
      assert.deepEqual(incrementals, [[second, first]]);
    } finally {
      await s.close();
    }
  });
});
