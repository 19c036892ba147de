/** Pure parts of the agent: the phase order, the persisted state, ScheduledBackup start semantics, --listen, archive status counts and metric names. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../harness/tmp.js';
import { BACKUP_PHASES, advancePhase, canAdvance, isTerminal, type BackupPhase } from '../../src/agent/phases.js';
import { AgentLockedError, AgentState } from '../../src/agent/state.js';
import { backupScheduleRunner } from '../../src/agent/scheduler.js';
import type { BackupRequestOfSlot, ClusterWorker } from '../../src/agent/cluster-worker.js';
import { parseListen } from '../../src/agent/http.js';
import { AgentMetrics, archiveStatusCounts } from '../../src/agent/metrics.js';
import { next, parseSchedule, scheduledBackupName } from '../../src/schedule/cron.js';
import type { ScheduledBackup } from '../../src/config/types.js';
import { UserError } from '../../src/util/errors.js';

describe('backup phases', () => {
  it('move forward only, and terminal phases never change', () => {
    const forward: [BackupPhase, BackupPhase][] = [
      ['pending', 'running'],
      ['running', 'walArchivingFailing'],
      ['walArchivingFailing', 'completed'],
      ['walArchivingFailing', 'failed'],
      ['pending', 'failed'],
      ['running', 'completed'],
    ];
    for (const [from, to] of forward) assert.ok(canAdvance(from, to), `${from} -> ${to}`);
    const backward: [BackupPhase, BackupPhase][] = [
      ['running', 'pending'],
      ['walArchivingFailing', 'running'],
      ['completed', 'failed'],
      ['failed', 'completed'],
      ['completed', 'running'],
      ['failed', 'pending'],
    ];
    for (const [from, to] of backward) {
      assert.equal(canAdvance(from, to), false, `${from} -> ${to}`);
      assert.equal(advancePhase(from, to), from);
    }
    assert.deepEqual(BACKUP_PHASES.filter(isTerminal), ['completed', 'failed']);
  });
});

describe('agent state', () => {
  it('persists entries, ignores backwards changes, and survives a reopen', async () => {
    const dir = scratchDir('agent-state');
    try {
      const state = await AgentState.open(dir.path);
      state.add({ name: 'sb-20260101000000', cluster: 'pg', scheduledBackup: 'sb', slot: '2026-01-01T00:00:00.000Z', immediate: false });
      state.advance('sb-20260101000000', 'running', { startedAt: '2026-01-01T00:00:01.000Z' });
      state.annotate('sb-20260101000000', { backupId: '20260101T000001', pid: 1234 });
      state.advance('sb-20260101000000', 'completed', { stoppedAt: '2026-01-01T00:01:00.000Z' });
      state.advance('sb-20260101000000', 'failed', { error: 'late news' });
      state.annotate('sb-20260101000000', { backupId: 'other' });
      await state.close();

      const again = await AgentState.open(dir.path);
      const b = again.find('sb-20260101000000')!;
      assert.equal(b.phase, 'completed');
      assert.equal(b.error, undefined, 'a refused change applies none of its fields');
      assert.equal(b.backupId, '20260101T000001', 'a terminal backup takes no annotations');
      assert.equal(b.startedAt, '2026-01-01T00:00:01.000Z');
      await again.close();
      assert.deepEqual(readdirSync(dir.path).sort(), ['state.json'], 'no temp file or lock left');
    } finally {
      dir.cleanup();
    }
  });

  it('refuses a state directory held by a live agent; a lock file naming a live PID (reused) does not block', async () => {
    const dir = scratchDir('agent-lock');
    try {
      const holder = await AgentState.open(dir.path);
      await assert.rejects(AgentState.open(dir.path), AgentLockedError);
      await holder.close();
      writeFileSync(join(dir.path, 'agent.lock'), '1'); // pid 1 is always alive
      await (await AgentState.open(dir.path)).close();
    } finally {
      dir.cleanup();
    }
  });

  it('moves an unreadable state file aside instead of overwriting it', async () => {
    const dir = scratchDir('agent-bad');
    try {
      writeFileSync(join(dir.path, 'state.json'), '{ not json');
      const state = await AgentState.open(dir.path);
      assert.equal(state.backups.length, 0);
      assert.ok(readdirSync(dir.path).some((f) => f.startsWith('state.json.unreadable-')));
      await state.close();
    } finally {
      dir.cleanup();
    }
  });

  it('keeps at most 200 finished entries, never dropping unfinished ones', async () => {
    const dir = scratchDir('agent-prune');
    try {
      const state = await AgentState.open(dir.path);
      state.add({ name: 'still-running', cluster: 'pg', scheduledBackup: 'sb', slot: '2026-01-01T00:00:00.000Z', immediate: false });
      state.advance('still-running', 'running');
      for (let i = 0; i < 210; i++) {
        state.add({ name: `b${i}`, cluster: 'pg', scheduledBackup: 'sb', slot: '2026-01-01T00:00:00.000Z', immediate: false });
        state.advance(`b${i}`, 'failed', { error: 'x' });
      }
      assert.equal(state.backups.filter((b) => isTerminal(b.phase)).length, 200);
      assert.ok(state.find('still-running'));
      assert.equal(state.find('b0'), undefined, 'the oldest finished entries go first');
      assert.ok(state.find('b209'));
      await state.close();
    } finally {
      dir.cleanup();
    }
  });
});

function scheduledBackup(name: string, spec: Partial<ScheduledBackup['spec']>): ScheduledBackup {
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'ScheduledBackup',
    metadata: { name },
    spec: { schedule: '0 0 0 * * *', cluster: { name: 'pg' }, ...spec },
    origin: { file: 'test.yaml', document: 0 },
    ignoredFields: [],
  } as unknown as ScheduledBackup;
}

/** Collects what a ScheduleRunner asks for; stands in for the cluster worker's queue. */
function recordingWorker(): { worker: ClusterWorker; requests: BackupRequestOfSlot[] } {
  const requests: BackupRequestOfSlot[] = [];
  const worker = { enqueueBackup: (r: BackupRequestOfSlot) => (requests.push(r), true) } as unknown as ClusterWorker;
  return { worker, requests };
}

describe('ScheduledBackup start semantics', () => {
  // In the future, so the runner's timer (real clock) stays armed until stop() instead of firing.
  const now = new Date('2030-03-04T05:06:07.890Z');

  it('immediate: one backup named after now, the first time only; the next slot after now', async () => {
    const dir = scratchDir('agent-sched');
    try {
      const sb = scheduledBackup('nightly', { immediate: true });
      const schedule = parseSchedule(sb.spec.schedule).schedule;
      let state = await AgentState.open(dir.path);
      const first = recordingWorker();
      const runner = backupScheduleRunner(sb, schedule, first.worker, state);
      runner.start(now);
      runner.stop();
      assert.deepEqual(
        first.requests.map((r) => [r.name, r.immediate]),
        [['nightly-20300304050607', true]],
      );
      assert.equal(state.schedules.nightly.nextScheduleTime, next(schedule, now)!.toISOString());
      assert.equal(state.schedules.nightly.nextScheduleTime, '2030-03-05T00:00:00.000Z');
      await state.close();

      // A restart (same state): no second immediate backup; missed slots are not replayed.
      state = await AgentState.open(dir.path);
      const second = recordingWorker();
      const later = new Date('2030-03-09T12:00:00.000Z');
      const again = backupScheduleRunner(sb, schedule, second.worker, state);
      again.start(later);
      again.stop();
      assert.deepEqual(second.requests, []);
      assert.equal(state.schedules.nightly.nextScheduleTime, '2030-03-10T00:00:00.000Z');
      await state.close();
    } finally {
      dir.cleanup();
    }
  });

  it('suspend: no backup at all, even with immediate', async () => {
    const dir = scratchDir('agent-susp');
    try {
      const sb = scheduledBackup('paused', { immediate: true, suspend: true });
      const state = await AgentState.open(dir.path);
      const { worker, requests } = recordingWorker();
      const runner = backupScheduleRunner(sb, parseSchedule(sb.spec.schedule).schedule, worker, state);
      runner.start(now);
      runner.stop();
      assert.deepEqual(requests, []);
      assert.equal(runner.view().nextScheduleTime, undefined);
      await state.close();
    } finally {
      dir.cleanup();
    }
  });

  it('names a slot <sb>-<YYYYMMDDhhmmss> in UTC', () => {
    assert.equal(scheduledBackupName('backup-example', new Date('2024-01-02T03:04:05Z')), 'backup-example-20240102030405');
  });
});

describe('--listen', () => {
  it('accepts HOST:PORT, [IPv6]:PORT and PORT; refuses the rest with exit code 2', () => {
    assert.deepEqual(parseListen('127.0.0.1:9187'), { host: '127.0.0.1', port: 9187 });
    assert.deepEqual(parseListen('[::1]:9187'), { host: '::1', port: 9187 });
    assert.deepEqual(parseListen('9187'), { host: '127.0.0.1', port: 9187 });
    assert.deepEqual(parseListen(':9187'), { host: '127.0.0.1', port: 9187 });
    for (const bad of ['localhost', '1.2.3.4:99999', 'a:b']) {
      assert.throws(() => parseListen(bad), (e: unknown) => e instanceof UserError && e.exitCode === 2, bad);
    }
  });
});

describe('WAL archive status', () => {
  it('counts .ready and .done and ages the oldest .ready', async () => {
    const dir = scratchDir('agent-wal');
    try {
      const status = join(dir.path, 'pg_wal', 'archive_status');
      mkdirSync(status, { recursive: true });
      const now = Date.now();
      for (const [name, ageSeconds] of [
        ['000000010000000000000003.ready', 100],
        ['000000010000000000000004.ready', 10],
        ['000000010000000000000001.done', 500],
        ['000000010000000000000002.done', 300],
        ['000000010000000000000002.00000028.backup.done', 300],
      ] as const) {
        const p = join(status, name);
        writeFileSync(p, '');
        utimesSync(p, (now - ageSeconds * 1000) / 1000, (now - ageSeconds * 1000) / 1000);
      }
      const c = await archiveStatusCounts(dir.path, now);
      assert.equal(c.ready, 2);
      assert.equal(c.done, 3);
      assert.equal(Math.round(c.oldestReadySeconds), 100);

      const text = await new AgentMetrics(dir.path).registry.metrics();
      assert.match(text, /^cnpg_collector_pg_wal_archive_status\{value="ready"\} 2$/m);
      assert.match(text, /^cnpg_collector_pg_wal_archive_status\{value="done"\} 3$/m);
      assert.match(text, /^pgark_wal_archive_lag_segments 2$/m);
      assert.ok(existsSync(status));
      assert.deepEqual(await archiveStatusCounts(join(dir.path, 'missing')), { ready: 0, done: 0, oldestReadySeconds: 0 });
    } finally {
      dir.cleanup();
    }
  });
});
