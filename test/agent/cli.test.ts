/** Bad input to `pgark agent` is refused with exit code 2 before anything is created; `pgark status` without an agent says so. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { pgark } from '../backup/helpers.js';
import { scheduledBackupYaml } from './helpers.js';

describe('pgark agent / status: bad input', () => {
  let store: TestStore;
  const dir = scratchDir('agent-cli');
  const stateDir = join(dir.path, 'state');

  before(async () => {
    store = await startStore('file');
    writeFileSync(join(dir.path, 'cluster.yaml'), store.manifest({ clusterName: 'pg' }));
  });

  after(async () => {
    await store?.stop();
    dir.cleanup();
  });

  async function agentWith(schedule: string, extraArgs: string[] = [], extra: Record<string, unknown> = {}) {
    const sb = join(dir.path, 'sb.yaml');
    writeFileSync(sb, scheduledBackupYaml('nightly', 'pg', schedule, extra));
    return pgark(['agent', '-f', join(dir.path, 'cluster.yaml'), '-f', sb, '--state-dir', stateDir, '--listen', `127.0.0.1:${await freePort()}`, ...extraArgs]);
  }

  it('refuses an invalid schedule, naming it, and creates no state', async () => {
    const r = await agentWith('0 0 25 * * *');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /invalid schedule "0 0 25 \* \* \*"/);
    assert.match(r.stderr, /hour/);
    assert.equal(existsSync(stateDir), false);
  });

  it('refuses a ScheduledBackup for a Cluster that is not there', async () => {
    const sb = join(dir.path, 'other.yaml');
    writeFileSync(sb, scheduledBackupYaml('nightly', 'nope', '0 0 0 * * *'));
    const r = await pgark(['agent', '-f', join(dir.path, 'cluster.yaml'), '-f', sb, '--state-dir', stateDir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no Cluster named "nope"/);
    assert.equal(existsSync(stateDir), false);
  });

  it('refuses unsupported backup methods, bad --listen and bad intervals', async () => {
    const method = await agentWith('0 0 0 * * *', [], { method: 'volumeSnapshot' });
    assert.equal(method.code, 2, method.stderr);
    assert.match(method.stderr, /spec.method volumeSnapshot is not supported/);
    const listen = await agentWith('0 0 0 * * *', ['--listen', 'localhost']);
    assert.equal(listen.code, 2, listen.stderr);
    assert.match(listen.stderr, /--listen: "localhost" is not HOST:PORT/);
    const interval = await agentWith('0 0 0 * * *', ['--retention-interval', '30']);
    assert.equal(interval.code, 2, interval.stderr);
    assert.match(interval.stderr, /--retention-interval/);
    assert.equal(existsSync(stateDir), false);
  });

  it('pgark status without an agent: exit 1 and where it looked', async () => {
    const port = await freePort();
    const r = await pgark(['status', '--agent', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`no pgark agent answers at http://127.0.0.1:${port}/status`));
  });
});
