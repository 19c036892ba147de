/**
 * The agent end to end on PostgreSQL 15 and s3rver: a ScheduledBackup every 5 seconds produces
 * correctly named backups, retention runs after them (backdated synthetic backups are deleted),
 * metrics change as they should, /status phases never move backwards, and the WAL archive goes
 * through the agent's fast path. Assertions are on names, counts and phases, never on timings.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { listBackups, type Catalog } from '../../src/catalog/catalog.js';
import { scheduledBackupName } from '../../src/schedule/cron.js';
import { canAdvance } from '../../src/agent/phases.js';
import { backupIdAt, DAY, writeBackup } from '../catalog/synthetic.js';
import { run } from '../backup/helpers.js';
import { getStatus, getText, metric, PGARK, PhaseRecorder, scheduledBackupYaml, startAgent, waitFor, type AgentProcess } from './helpers.js';

const CLUSTER = 'pg';

describe('pgark agent: scheduled backups, retention, metrics, status', { timeout: 600_000 }, () => {
  let store: TestStore;
  let pg: PgServer;
  let agent: AgentProcess | undefined;
  const dir = scratchDir('agent');
  const manifests = join(dir.path, 'manifests');
  const stateDir = join(dir.path, 'state');
  const synthetic: string[] = [];

  before(async () => {
    store = await startStore('s3');
    mkdirSync(manifests, { mode: 0o755 });
    writeFileSync(
      join(manifests, 'cluster.yaml'),
      store.manifest({ clusterName: CLUSTER, objectStore: { data: { immediateCheckpoint: true } }, backup: { retentionPolicy: '7d' } }),
    );
    writeFileSync(join(manifests, 'every5.yaml'), scheduledBackupYaml('every5', CLUSTER, '*/5 * * * * *', { immediate: true }));
    writeFileSync(join(manifests, 'paused.yaml'), scheduledBackupYaml('paused', CLUSTER, '* * * * * *', { immediate: true, suspend: true }));
    for (const f of ['cluster.yaml', 'every5.yaml', 'paused.yaml']) chmodSync(join(manifests, f), 0o644);

    // Backdated backups outside the 7-day window: the two oldest must go, the newest before the
    // window stays (it covers the window's start).
    const s = await openObjectStore(store.resolved(CLUSTER));
    try {
      for (const days of [12, 11, 10]) {
        const endTime = new Date(Math.floor((Date.now() - days * DAY) / 1000) * 1000);
        const id = backupIdAt(endTime);
        synthetic.push(id);
        await writeBackup(s, CLUSTER, { id, beginSeg: 1, endSeg: 1, endTime, name: `old-${days}d` });
      }
    } finally {
      await s.close();
    }

    pg = await startPostgres({
      settings: {
        archive_mode: 'on',
        archive_command: `PGARK_WAL_DAEMON_IDLE_SECONDS=2 ${process.execPath} ${PGARK} wal-archive -f ${join(manifests, 'cluster.yaml')} %p`,
      },
    });
  });

  after(async () => {
    if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) {
      agent.proc.kill('SIGKILL');
      await agent.exited;
    }
    await pg?.destroy();
    await store?.stop();
    dir.cleanup();
  });

  it('runs the schedule, applies retention, and reports it all', async (t) => {
    const port = await freePort();
    agent = startAgent(['-f', manifests, '--state-dir', stateDir, '--pgdata', pg.pgdata, '--retention-interval', '1h', '--refresh-interval', '1s'], {
      who: pg.who,
      env: pg.env,
      port,
    });
    const a = agent;
    const phases = new PhaseRecorder();
    const poll = async () => {
      const s = await getStatus(a.url);
      phases.record(s);
      return s;
    };

    // The first completed backup is the immediate one.
    const first = await waitFor('a completed backup', async () => {
      const s = await poll();
      return s.backups.some((b) => b.phase === 'completed') ? s : undefined;
    }, 300_000, a);
    const metricsAfterFirst = (await getText(a.url, '/metrics')).body;
    const lastAvailable1 = metric(metricsAfterFirst, 'cnpg_collector_last_available_backup_timestamp', { cluster: CLUSTER });
    assert.ok(lastAvailable1 && lastAvailable1 > 0, 'last available backup timestamp is set after the first backup');
    assert.ok(first.backups.some((b) => b.immediate && b.name.startsWith('every5-')), 'the immediate backup was queued');

    // Then scheduled slots: wait until three backups have completed.
    const later = await waitFor('three completed backups', async () => {
      const s = await poll();
      return s.backups.filter((b) => b.phase === 'completed').length >= 3 ? s : undefined;
    }, 420_000, a);

    // Names: <sb>-<YYYYMMDDhhmmss of the slot>, slots on 5-second boundaries; nothing for the suspended one.
    for (const b of later.backups) {
      assert.equal(b.scheduledBackup, 'every5');
      assert.equal(b.name, scheduledBackupName('every5', new Date(b.slot)), `name of ${b.name} matches its slot`);
      if (!b.immediate) assert.equal(new Date(b.slot).getUTCSeconds() % 5, 0, `${b.name} is on a */5 slot`);
    }
    assert.equal(later.backups.filter((b) => b.immediate).length, 1, 'exactly one immediate backup');
    assert.ok(!later.backups.some((b) => b.name.startsWith('paused-')), 'the suspended ScheduledBackup takes no backup');
    assert.equal(new Set(later.backups.map((b) => b.name)).size, later.backups.length, 'no backup name twice');
    const paused = later.scheduledBackups.find((s) => s.name === 'paused');
    assert.equal(paused?.suspend, true);
    assert.equal(paused?.nextScheduleTime, undefined);

    // The catalog on s3rver holds each completed backup, DONE, under its name and id.
    const s = await openObjectStore(store.resolved(CLUSTER));
    let catalog: Catalog;
    try {
      catalog = await listBackups(s, CLUSTER);
    } finally {
      await s.close();
    }
    const completed = later.backups.filter((b) => b.phase === 'completed');
    for (const b of completed) {
      const info = catalog.backups.find((i) => i.backup_name === b.name);
      assert.equal(info?.status, 'DONE', `${b.name} is DONE in the store`);
      assert.equal(info?.backup_id, b.backupId, `${b.name} has the backup id the agent reports`);
      assert.ok(b.startedAt && b.stoppedAt, `${b.name} has start and stop times`);
    }
    const names = catalog.backups.map((i) => i.backup_name).filter(Boolean);
    assert.equal(new Set(names).size, names.length, 'no duplicated backup in the store');

    // Retention ran after the backups: the 12- and 11-day-old synthetic backups are gone, the 10-day one stays.
    const ids = new Set(catalog.backups.map((i) => i.backup_id));
    assert.ok(!ids.has(synthetic[0]) && !ids.has(synthetic[1]), 'retention deleted the backups outside the window');
    assert.ok(ids.has(synthetic[2]), 'retention kept the newest backup before the window');
    const cluster = later.clusters.find((c) => c.name === CLUSTER);
    assert.equal(cluster?.lastRetention?.ok, true);

    // Metrics moved as expected.
    const text = (await getText(a.url, '/metrics')).body;
    const lastAvailable2 = metric(text, 'cnpg_collector_last_available_backup_timestamp', { cluster: CLUSTER })!;
    assert.ok(lastAvailable2 > lastAvailable1, 'the last available backup timestamp increased');
    const keptEnd = catalog.backups.find((i) => i.backup_id === synthetic[2])!.end_time!.epochMs() / 1000;
    assert.equal(metric(text, 'cnpg_collector_first_recoverability_point', { cluster: CLUSTER }), keptEnd, 'first recoverability point = end of the oldest kept backup');
    assert.equal(metric(text, 'cnpg_collector_last_failed_backup_timestamp', { cluster: CLUSTER }), 0, 'no failed backup');
    assert.ok((metric(text, 'pgark_backups_total', { cluster: CLUSTER, result: 'completed' }) ?? 0) >= 3);
    assert.ok((metric(text, 'pgark_retention_deleted_backups_total', { cluster: CLUSTER }) ?? 0) >= 2);
    assert.notEqual(metric(text, 'cnpg_collector_pg_wal_archive_status', { value: 'ready' }), undefined);
    assert.ok((metric(text, 'cnpg_collector_pg_wal_archive_status', { value: 'done' }) ?? 0) >= 1, 'archived segments are counted as done');
    assert.ok((metric(text, 'pgark_wal_archived_total') ?? 0) >= 1, 'WAL went through the agent\'s fast path');
    assert.equal(metric(text, 'pgark_pg_stat_archiver_up'), 1);
    assert.ok((metric(text, 'cnpg_pg_stat_archiver_archived_count') ?? 0) >= 3, 'pg_stat_archiver counts the archived segments');
    assert.equal(metric(text, 'cnpg_pg_stat_archiver_failed_count'), 0);
    assert.ok((metric(text, 'pgark_uploaded_bytes_total', { kind: 'backup' }) ?? 0) > 0);
    assert.ok((metric(text, 'process_resident_memory_bytes') ?? 0) > 0, 'process memory is exported');
    t.diagnostic(`agent RSS after ${completed.length} backups: ${((metric(text, 'process_resident_memory_bytes') ?? 0) / 2 ** 20).toFixed(1)} MiB, heap used ${((metric(text, 'nodejs_heap_size_used_bytes') ?? 0) / 2 ** 20).toFixed(1)} MiB`);
    assert.ok((metric(text, 'pgark_backup_duration_seconds_count', { cluster: CLUSTER, result: 'completed' }) ?? 0) >= 3);

    // Probes and the status command.
    assert.equal((await getText(a.url, '/healthz')).status, 200);
    assert.equal((await getText(a.url, '/readyz')).status, 200);
    const statusText = await run(process.execPath, [PGARK, 'status', '--agent', a.url]);
    assert.equal(statusText.code, 0, statusText.stderr);
    for (const b of completed) assert.match(statusText.stdout, new RegExp(`${b.name}\\s+${CLUSTER}\\s+completed\\s+${b.backupId}`));
    const statusJson = await run(process.execPath, [PGARK, 'status', '--agent', a.url, '--json']);
    assert.equal(statusJson.code, 0, statusJson.stderr);
    assert.ok((JSON.parse(statusJson.stdout) as { backups: unknown[] }).backups.length >= 3);

    // Phases never moved backwards across all the polls.
    for (const [name, seq] of phases.sequences()) {
      for (let i = 1; i < seq.length; i++) assert.ok(canAdvance(seq[i - 1], seq[i]), `${name}: ${seq.join(' -> ')} moves backwards`);
    }

    a.proc.kill('SIGTERM');
    const exit = await a.exited;
    assert.equal(exit.code, 0, `agent exit after SIGTERM\n${a.stderr().slice(-3000)}`);
  });
});
