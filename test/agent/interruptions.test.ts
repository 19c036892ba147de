/**
 * The agent interrupted, on PostgreSQL 15 and s3rver. A backup is held "running" deterministically
 * by breaking WAL archiving (archive_command points at a bucket that does not exist, and does not
 * return to PostgreSQL while a gate file exists), so the backup waits for its end WAL segment:
 *  1. the agent sees the archive failures and moves the backup to walArchivingFailing; SIGTERM
 *     then aborts it: exit code 0, the backup failed, nothing of it left in the store;
 *  2. a restarted agent runs the next slot (no second immediate backup); kill -9 mid-backup,
 *     and its backup process does not outlive it;
 *  3. archiving repaired, a third agent reports the interrupted backup failed with the reason,
 *     leaves no stuck or duplicated backup, and the next slot completes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { listBackups, type Catalog } from '../../src/catalog/catalog.js';
import { canAdvance, isTerminal } from '../../src/agent/phases.js';
import { processAlive } from '../../src/agent/state.js';
import { getStatus, PGARK, PhaseRecorder, readState, scheduledBackupYaml, startAgent, waitFor, type AgentProcess } from './helpers.js';

const CLUSTER = 'pg';

describe('pgark agent: SIGTERM, kill -9 and restart', { timeout: 900_000 }, () => {
  let store: TestStore;
  let pg: PgServer;
  const agents: AgentProcess[] = [];
  const dir = scratchDir('agent-int');
  const manifests = join(dir.path, 'manifests');
  const stateDir = join(dir.path, 'state');
  const brokenManifest = join(dir.path, 'broken.yaml');
  const gate = join(dir.path, 'archiving-held');
  const phases = new PhaseRecorder();

  async function catalog(): Promise<Catalog> {
    const s = await openObjectStore(store.resolved(CLUSTER));
    try {
      return await listBackups(s, CLUSTER);
    } finally {
      await s.close();
    }
  }

  async function start(): Promise<AgentProcess> {
    const a = startAgent(['-f', manifests, '--state-dir', stateDir, '--pgdata', pg.pgdata, '--refresh-interval', '2s'], { who: pg.who, env: pg.env, port: await freePort() });
    agents.push(a);
    return a;
  }

  async function poll(a: AgentProcess) {
    const s = await getStatus(a.url);
    phases.record(s);
    return s;
  }

  before(async () => {
    store = await startStore('s3');
    mkdirSync(manifests, { mode: 0o755 });
    const good = join(manifests, 'cluster.yaml');
    writeFileSync(good, store.manifest({ clusterName: CLUSTER, objectStore: { data: { immediateCheckpoint: true } } }));
    writeFileSync(join(manifests, 'often.yaml'), scheduledBackupYaml('often', CLUSTER, '*/5 * * * * *', { immediate: true }));
    writeFileSync(brokenManifest, store.manifest({ clusterName: CLUSTER, objectStore: { destinationPath: 's3://no-such-bucket/x' } }));
    for (const f of [good, join(manifests, 'often.yaml'), brokenManifest]) chmodSync(f, 0o644);
    writeFileSync(gate, '');
    pg = await startPostgres({
      settings: {
        archive_mode: 'on',
        // pgark fails every call (the agent sees it), but the command does not return while the gate
        // exists: PostgreSQL counts no failure, so the backup keeps waiting instead of failing fast
        // on pg_stat_archiver's failures, as it would with the broken command alone. Between calls a
        // daemon the client started without an agent idles out (1 s), so a restarted agent can take
        // the WAL fast path over (it tries every 5 s).
        archive_command: `while [ -e ${gate} ]; do PGARK_WAL_DAEMON_IDLE_SECONDS=1 ${process.execPath} ${PGARK} wal-archive -f ${brokenManifest} %p; sleep 4; done; exit 1`,
      },
    });
  });

  after(async () => {
    for (const a of agents) {
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        a.proc.kill('SIGKILL');
        await a.exited;
      }
    }
    await pg?.destroy();
    await store?.stop();
    dir.cleanup();
  });

  it('aborts cleanly on SIGTERM, settles a backup killed with the agent, and runs the next slot', async () => {
    // 1. SIGTERM while the immediate backup waits for WAL that cannot be archived.
    const a1 = await start();
    const stuck = await waitFor('the immediate backup in walArchivingFailing', async () => {
      const s = await poll(a1);
      return s.backups.find((b) => b.immediate && b.phase === 'walArchivingFailing');
    }, 300_000, a1);
    assert.match(stuck.error ?? '', /WAL archiving is failing/);
    assert.ok(stuck.backupId, 'the backup id is known while it runs');
    a1.proc.kill('SIGTERM');
    const exit1 = await a1.exited;
    assert.equal(exit1.code, 0, `exit code after SIGTERM\n${a1.stderr().slice(-3000)}`);
    let state = readState(stateDir);
    const aborted = state.backups.find((b) => b.name === stuck.name)!;
    assert.equal(aborted.phase, 'failed');
    assert.match(aborted.error ?? '', /aborted/);
    assert.ok(state.backups.every((b) => isTerminal(b.phase)), 'nothing left pending or running after SIGTERM');
    let cat = await catalog();
    assert.ok(!cat.backups.some((b) => b.backup_name === stuck.name), 'the aborted backup has no backup.info');
    assert.deepEqual(cat.incomplete, [], 'the aborted backup left no objects');
    const namesBefore = new Set(state.backups.map((b) => b.name));

    // 2. Restart: no second immediate backup; the next slot runs; kill -9 while it waits for WAL.
    const a2 = await start();
    const victim = await waitFor('a scheduled backup running with its id', async () => {
      const s = await poll(a2);
      return s.backups.find((b) => !namesBefore.has(b.name) && b.phase === 'walArchivingFailing' && b.backupId && b.pid);
    }, 300_000, a2);
    assert.equal(victim.immediate, false);
    // The reason names the archiving failure and how far behind it is (peers' pain point: a backup waiting for WAL says why).
    assert.match(victim.error ?? '', /WAL archiving is failing: .*segment\(s\) waiting/);
    const during = await getStatus(a2.url);
    assert.ok(during.walArchive && during.walArchive.ready >= 1 && during.walArchive.problem, 'the status shows the archive lag and the problem');
    // Its tars are in the store (it waits for WAL only after them): the kill leaves real debris.
    await waitFor('the running backup\'s objects in the store', async () => ((await catalog()).running.some((r) => r.backupId === victim.backupId) ? true : undefined), 120_000, a2);
    a2.proc.kill('SIGKILL');
    await a2.exited;
    await waitFor('the backup process to end with its agent', async () => (processAlive(victim.pid!) ? undefined : true), 60_000);
    state = readState(stateDir);
    assert.equal(state.backups.filter((b) => b.immediate).length, 1, 'the restart took no second immediate backup');
    assert.ok(state.backups.some((b) => b.name === victim.name && !isTerminal(b.phase)), 'the state still shows the killed backup in progress');

    // 3. Repair archiving, restart: the killed backup is failed with the reason, the next slot completes.
    await pg.query(`ALTER SYSTEM SET archive_command = '${`PGARK_WAL_DAEMON_IDLE_SECONDS=2 ${process.execPath} ${PGARK} wal-archive -f ${join(manifests, 'cluster.yaml')} %p`}'`);
    await pg.query('SELECT pg_reload_conf()');
    unlinkSync(gate);
    const a3 = await start();
    const settled = await waitFor('the killed backup reported failed', async () => {
      const s = await poll(a3);
      const b = s.backups.find((x) => x.name === victim.name);
      return b && isTerminal(b.phase) ? b : undefined;
    }, 120_000, a3);
    assert.equal(settled.phase, 'failed');
    assert.match(settled.error ?? '', /agent restarted while the backup was running/);
    const namesAtRestart = new Set(readState(stateDir).backups.map((b) => b.name));
    const next = await waitFor('a backup after the restart completed', async () => {
      const s = await poll(a3);
      return s.backups.find((b) => !namesAtRestart.has(b.name) && b.phase === 'completed');
    }, 400_000, a3);
    assert.equal(next.immediate, false);

    cat = await catalog();
    assert.equal(cat.backups.find((b) => b.backup_name === next.name)?.status, 'DONE', 'the next slot is DONE in the store');
    assert.ok(!cat.backups.some((b) => b.backup_name === victim.name), 'the killed backup never became a backup in the store');
    assert.ok(!cat.backups.some((b) => b.backup_id === victim.backupId), 'nor under its id');
    const storeNames = cat.backups.map((b) => b.backup_name);
    assert.equal(new Set(storeNames).size, storeNames.length, 'no duplicated backup');
    assert.deepEqual(cat.incomplete, [], 'no leftover objects of interrupted backups');

    a3.proc.kill('SIGTERM');
    assert.equal((await a3.exited).code, 0);
    state = readState(stateDir);
    assert.ok(state.backups.every((b) => isTerminal(b.phase)), 'no stuck backup');
    assert.equal(new Set(state.backups.map((b) => b.name)).size, state.backups.length, 'every slot recorded once');
    for (const [name, seq] of phases.sequences()) {
      for (let i = 1; i < seq.length; i++) assert.ok(canAdvance(seq[i - 1], seq[i]), `${name}: ${seq.join(' -> ')} moves backwards`);
    }
  });
});
