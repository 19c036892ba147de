/**
 * How a restarted agent settles backups its predecessor left pending or running, decided by the
 * object store (file:// here; no PostgreSQL needed): a DONE backup.info under the name means the
 * backup finished after all, a FAILED one carries barman's error, none means the restart killed
 * it (and its uploaded objects are removed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import type { AgentStateFile, BackupEntry } from '../../src/agent/state.js';
import { writeBackup } from '../catalog/synthetic.js';
import { getStatus, metric, getText, readState, startAgent, waitFor } from './helpers.js';

const CLUSTER = 'pg';

describe('pgark agent: settling backups after a restart', { timeout: 120_000 }, () => {
  let store: TestStore;
  const dir = scratchDir('agent-settle');
  const stateDir = join(dir.path, 'state');

  before(async () => {
    store = await startStore('file');
    writeFileSync(join(dir.path, 'cluster.yaml'), store.manifest({ clusterName: CLUSTER }));
  });

  after(async () => {
    await store?.stop();
    dir.cleanup();
  });

  it('completed, failed with barman\'s error, or failed because of the restart', async () => {
    const s = await openObjectStore(store.resolved(CLUSTER));
    const end = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
    try {
      await writeBackup(s, CLUSTER, { id: '20260101T000001', beginSeg: 1, endSeg: 1, endTime: end, name: 'nightly-20260101000000' });
      await writeBackup(s, CLUSTER, { id: '20260102T000001', beginSeg: 2, endSeg: 2, endTime: end, name: 'nightly-20260102000000', status: 'FAILED', error: 'failure uploading data (connection reset)' });
      // Tars of a backup killed before its backup.info.
      await s.put(`${backupPrefix(CLUSTER, '20260103T000001')}data.tar`, Buffer.alloc(4096, 1));
    } finally {
      await s.close();
    }
    const entry = (name: string, phase: BackupEntry['phase'], backupId?: string): BackupEntry => ({
      name,
      cluster: CLUSTER,
      scheduledBackup: 'nightly',
      slot: '2026-01-01T00:00:00.000Z',
      immediate: false,
      phase,
      queuedAt: '2026-01-01T00:00:00.000Z',
      startedAt: '2026-01-01T00:00:00.500Z',
      backupId,
      // A pid that is not a backup process: the agent must neither wait for it nor kill it.
      pid: process.pid,
    });
    const state: AgentStateFile = {
      version: 1,
      backups: [
        entry('nightly-20260101000000', 'running', '20260101T000001'),
        entry('nightly-20260102000000', 'walArchivingFailing', '20260102T000001'),
        entry('nightly-20260103000000', 'running', '20260103T000001'),
        entry('nightly-20260104000000', 'pending'),
      ],
      schedules: {},
    };
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'state.json'), JSON.stringify(state));

    const agent = startAgent(['-f', join(dir.path, 'cluster.yaml'), '--state-dir', stateDir], { port: await freePort() });
    try {
      const status = await waitFor('the agent to answer', () => getStatus(agent.url), 60_000, agent);
      const by = new Map(status.backups.map((b) => [b.name, b]));
      assert.equal(by.get('nightly-20260101000000')?.phase, 'completed', 'a DONE backup.info: it finished after all');
      assert.equal(by.get('nightly-20260101000000')?.backupId, '20260101T000001');
      assert.equal(by.get('nightly-20260102000000')?.phase, 'failed');
      assert.match(by.get('nightly-20260102000000')?.error ?? '', /agent restarted while the backup was running: failure uploading data \(connection reset\)/);
      assert.equal(by.get('nightly-20260103000000')?.phase, 'failed');
      assert.equal(by.get('nightly-20260103000000')?.error, 'agent restarted while the backup was running');
      assert.equal(by.get('nightly-20260104000000')?.phase, 'failed');
      assert.equal(by.get('nightly-20260104000000')?.error, 'agent restarted before the backup started');

      const s2 = await openObjectStore(store.resolved(CLUSTER));
      try {
        const catalog = await listBackups(s2, CLUSTER);
        assert.deepEqual(catalog.incomplete, [], 'the killed backup\'s tars were removed');
        assert.deepEqual(catalog.backups.map((b) => b.backup_id), ['20260101T000001', '20260102T000001'], 'committed backups are untouched');
      } finally {
        await s2.close();
      }
      const text = (await getText(agent.url, '/metrics')).body;
      assert.equal(metric(text, 'cnpg_collector_last_available_backup_timestamp', { cluster: CLUSTER }), end.getTime() / 1000);
      assert.ok((metric(text, 'cnpg_collector_last_failed_backup_timestamp', { cluster: CLUSTER }) ?? 0) > end.getTime() / 1000, 'the restart failures count as failed backups');
    } finally {
      agent.proc.kill('SIGTERM');
      assert.equal((await agent.exited).code, 0);
    }
    assert.ok(readState(stateDir).backups.every((b) => b.phase === 'completed' || b.phase === 'failed'));
  });
});
