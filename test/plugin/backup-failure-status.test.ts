/**
 * A Backup call that fails in a pod is recorded in ObjectStore.status.serverRecoveryWindow
 * [serverName].lastFailedBackupTime, as plugin-barman-cloud records it, even when the failure left
 * nothing in the catalog. `plugin serve --role instance` runs in this process with the pod's
 * environment; no Kubernetes API server runs here, so test/harness/kube-api.ts plays its
 * documented contract (status subresource, resourceVersion conflicts). PostgreSQL is given as
 * unreachable, so the backup fails once it starts; a request refused before starting is no failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { clusterJson, cnpgClient } from '../harness/cnpg-client.js';
import { pluginRole, startKubeApi } from '../harness/kube-api.js';
import { startStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { putObjectStore, startPodSidecar } from './kube-helpers.js';

const NS = 'prod';
const TOKEN = 'sa-token-backup';
const PLUGIN = 'pgark.io';
const BACKUP = 'cnpgi.backup.v1.Backup';

test('a failed Backup sets lastFailedBackupTime in the ObjectStore status; a refused request does not; other servers keep their entries', async () => {
  const api = await startKubeApi();
  const ts = await startStore('s3');
  const dir = scratchDir('plugin-backup-failure');
  try {
    api.grant(TOKEN, pluginRole(['store-a'], [ts.secretName], ['pg']), `system:serviceaccount:${NS}:pg`);
    putObjectStore(api, ts, 'store-a', NS);
    const other = { firstRecoverabilityPoint: '2026-01-01T00:00:00Z', lastSuccessfulBackupTime: '2026-01-02T00:00:00Z' };
    const os = api.get('ObjectStore', NS, 'store-a')!;
    api.put({ ...os, status: { serverRecoveryWindow: { other } } });
    const { plugin, cluster } = await startPodSidecar(api, {
      token: TOKEN,
      namespace: NS,
      pluginName: PLUGIN,
      objectName: 'store-a',
      currentPrimary: 'pg-1',
      socketDir: join(dir.path, 'sock'),
      pg: { pghost: join(dir.path, 'no-server'), pgport: '5432', pguser: 'postgres', pgdata: join(dir.path, 'no-pgdata') },
    });
    const client = cnpgClient(plugin.server.socketPath);
    const window = () => (api.get('ObjectStore', NS, 'store-a')!.status as { serverRecoveryWindow?: Record<string, Record<string, string>> }).serverRecoveryWindow ?? {};
    const backup = (parameters: Record<string, string>) =>
      client.call(BACKUP, 'Backup', {
        clusterDefinition: clusterJson(cluster),
        backupDefinition: Buffer.from(JSON.stringify({ metadata: { name: 'pg-backup' }, spec: { method: 'plugin', cluster: { name: 'pg' } } })),
        parameters,
      });
    try {
      await assert.rejects(backup({ bogus: '1' }), /unknown parameter "bogus"/);
      assert.equal(window().pg?.lastFailedBackupTime, undefined, 'a refused request is not a failed backup');

      const t0 = Math.floor(Date.now() / 1000) * 1000;
      await assert.rejects(backup({}));
      const t1 = Date.now();
      const failed = window().pg?.lastFailedBackupTime;
      assert.match(failed ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'metav1.Time');
      assert.ok(Date.parse(failed!) >= t0 && Date.parse(failed!) <= t1, `${failed} within the call`);
      assert.deepEqual(window().other, other, "another server's entry is left as it was");
    } finally {
      client.close();
      await plugin.close();
    }
    // The retention cycle the sidecar ran meanwhile rewrote the catalog fields, and kept the failure.
    assert.ok(window().pg?.lastFailedBackupTime);
  } finally {
    dir.cleanup();
    await ts.stop();
    await api.close();
  }
});
