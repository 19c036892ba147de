import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../harness/tmp.js';

function pgark(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/pgark.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const scheduled = (name: string, schedule: string, extra = '') => `apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: ${name}
spec:
  schedule: "${schedule}"
  cluster:
    name: pg-backup
${extra}`;

test('pgark schedule next prints run times and backup names for every ScheduledBackup, with the 5-field warning', () => {
  const dir = scratchDir('schedule-cli');
  try {
    const file = join(dir.path, 'scheduled.yaml');
    writeFileSync(file, [scheduled('backup-example', '0 0 0 * * *', '  immediate: true\n'), scheduled('every-hour', '0 30 * * *', '  suspend: true\n')].join('---\n'));

    const r = pgark(['schedule', 'next', '-f', file, '-n', '3', '--from', '2024-02-28T12:00:00Z']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ScheduledBackup "backup-example" \(cluster "pg-backup"\): schedule "0 0 0 \* \* \*", times in UTC/);
    assert.match(r.stdout, /2024-02-29T00:00:00.000Z  backup-example-20240229000000\n  2024-03-01T00:00:00.000Z  backup-example-20240301000000\n  2024-03-02T00:00:00.000Z  backup-example-20240302000000\n/);
    assert.match(r.stdout, /immediate: true/);
    assert.match(r.stdout, /warning: schedule "0 30 \* \* \*" has 5 fields: the first is SECONDS/);
    assert.match(r.stdout, /suspended \(suspend: true\)/);
    assert.match(r.stdout, /2024-02-28T12:30:00.000Z  every-hour-20240228123000\n  2024-02-28T13:30:00.000Z  every-hour-20240228133000\n/);

    const j = pgark(['schedule', 'next', '-f', file, '-n', '2', '--from', '2024-02-28T12:00:00Z', '--json']);
    assert.equal(j.status, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.from, '2024-02-28T12:00:00.000Z');
    assert.deepEqual(out.scheduledBackups[0].next, [
      { time: '2024-02-29T00:00:00.000Z', backupName: 'backup-example-20240229000000' },
      { time: '2024-03-01T00:00:00.000Z', backupName: 'backup-example-20240301000000' },
    ]);
    assert.equal(out.scheduledBackups[0].warning, null);
    assert.match(out.scheduledBackups[1].warning, /first is SECONDS/);
    assert.equal(out.scheduledBackups[1].suspend, true);
    assert.match(j.stderr, /pgark: warning: schedule "0 30 \* \* \*" has 5 fields/);

    const badCount = pgark(['schedule', 'next', '-f', file, '-n', 'many']);
    assert.equal(badCount.status, 2);
    assert.match(badCount.stderr, /-n many: expected a whole number from 1 to 1000/);

    // Invalid schedule: exit 2, the file position and the field in the message, a hint.
    writeFileSync(file, scheduled('bad', '0 0 0 * * 7'));
    const bad = pgark(['schedule', 'next', '-f', file]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /scheduled\.yaml:\d+:\d+: spec\.schedule: .*day-of-week field "7": 7 is above the maximum \(6\)/);
    assert.match(bad.stderr, /hint: Sunday is 0/);

  } finally {
    dir.cleanup();
  }
});
