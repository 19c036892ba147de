/**
 * Rotated credentials reach the long-running WAL daemon (and the agent, which hosts the same
 * daemon) without a restart. The store is Azurite with a custom account key (AZURITE_ACCOUNTS):
 * unlike s3rver, which does not check signatures, it rejects a request signed with a key it no
 * longer has. Rotation is Azurite restarted with only the new key plus the --secrets-dir volume
 * swapped the way Kubernetes does it (a new timestamped directory, then an atomic rename of the
 * ..data symlink).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { stringify } from 'yaml';
import { freePort, waitForPort } from '../harness/ports.js';
import { binPath } from '../harness/server-process.js';
import { scratchDir } from '../harness/tmp.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { resolveWalTarget, WalTargetCache } from '../../src/wal/target.js';
import type { AgentStatus } from '../../src/agent/status-cli.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from './helpers.js';
import { startAgent, waitFor } from '../agent/helpers.js';

const ACCOUNT = 'devstoreaccount1';
const SECRET = 'azure-creds';
const CONTAINER = 'pgark';

describe('rotated credentials are picked up without restarting the WAL daemon', () => {
  const dir = scratchDir('walrotate');
  const data = join(dir.path, 'azurite');
  const secretsDir = join(dir.path, 'secrets');
  const manifest = join(dir.path, 'cluster.yaml');
  let port: number;
  let azurite: ChildProcess | undefined;
  const pgdatas: string[] = [];
  let generation = 0;

  /** Azurite on the same port and data directory, knowing only `key` for the account. */
  async function startAzurite(key: string): Promise<void> {
    azurite = spawn(binPath('azurite-blob'), ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', data, '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'], {
      env: { ...process.env, AZURITE_ACCOUNTS: `${ACCOUNT}:${key}` },
      stdio: 'ignore',
    });
    await waitForPort(port);
  }

  async function stopAzurite(): Promise<void> {
    const child = azurite;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** Writes the Secret volume as the kubelet does: files in a new ..<timestamp> directory, ..data swapped atomically. */
  function mountSecret(key: string): void {
    const volume = join(secretsDir, SECRET);
    const version = `..2026_12_05_00_00_0${generation++}`;
    mkdirSync(join(volume, version), { recursive: true });
    writeFileSync(join(volume, version, 'AZURE_STORAGE_ACCOUNT'), ACCOUNT);
    writeFileSync(join(volume, version, 'AZURE_STORAGE_KEY'), key);
    symlinkSync(version, join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    for (const file of ['AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_KEY']) {
      try {
        symlinkSync(join('..data', file), join(volume, file));
      } catch {
        // already linked through ..data
      }
    }
  }

  function archive(pgdata: string, p: string) {
    return runPgark(['wal-archive', '-f', manifest, '--secrets-dir', secretsDir, p], { cwd: pgdata, env: { PGARK_WAL_DAEMON_IDLE_SECONDS: '300' } });
  }

  before(async () => {
    port = await freePort();
    const key = randomBytes(64).toString('base64');
    await startAzurite(key);
    const service = new BlobServiceClient(`http://127.0.0.1:${port}/${ACCOUNT}`, new StorageSharedKeyCredential(ACCOUNT, key));
    await service.getContainerClient(CONTAINER).createIfNotExists();
    mountSecret(key);
    const cluster = {
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Cluster',
      metadata: { name: 'rotate' },
      spec: {
        instances: 1,
        backup: {
          barmanObjectStore: {
            destinationPath: `http://127.0.0.1:${port}/${ACCOUNT}/${CONTAINER}/rotate`,
            azureCredentials: { storageAccount: { name: SECRET, key: 'AZURE_STORAGE_ACCOUNT' }, storageKey: { name: SECRET, key: 'AZURE_STORAGE_KEY' } },
            wal: { maxParallel: 2 },
          },
        },
      },
    };
    writeFileSync(manifest, stringify(cluster));
  });
  after(async () => {
    for (const p of pgdatas) await stopWalDaemon(p);
    await stopAzurite();
    dir.cleanup();
  });

  /** Rotates the key: the store stops accepting the old one, and the mounted Secret holds the new one. */
  async function rotate(): Promise<string> {
    const key = randomBytes(64).toString('base64');
    await stopAzurite();
    await startAzurite(key);
    mountSecret(key);
    return key;
  }

  test('daemon: after the store rejected the old key, the next call re-reads the Secret and archives', async (t) => {
    const d = fakePgdata(join(dir.path, 'daemon'));
    pgdatas.push(d.pgdata);
    const first = await archive(d.pgdata, d.addReady('000000010000000000000001', craftSegment('000000010000000000000001')));
    assert.equal(first.code, 0, first.stderr);
    const daemonPid = readFileSync(walRuntime(d.pgdata).lockFile, 'utf8');

    const oldKey = readFileSync(join(secretsDir, SECRET, 'AZURE_STORAGE_KEY'), 'utf8');
    const newKey = await rotate();
    const p2 = d.addReady('000000010000000000000002', craftSegment('000000010000000000000002'));
    let r = await archive(d.pgdata, p2);
    if (r.code !== 0) {
      // The daemon still held the old key: this attempt is rejected, and makes it read the Secret again.
      assert.equal(r.code, 1);
      assert.match(r.stderr, /credentials rejected/);
      r = await archive(d.pgdata, p2);
      t.diagnostic('first call after the rotation was rejected; the retry used the new key');
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(walRuntime(d.pgdata).lockFile, 'utf8'), daemonPid, 'the same daemon, not a restarted one');
    for (const secret of [oldKey, newKey]) assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'no key in the output');
  });

  test('cache: a rotated Secret is read again after the recheck interval, and an unchanged one keeps its connections', async () => {
    const cache = new WalTargetCache(resolveWalTarget, 0);
    const ref = { files: [manifest], secretsDir };
    try {
      const old = await cache.get(ref);
      assert.equal(await cache.get(ref), old, 'same credentials: the open target is kept');
      await rotate();
      const fresh = await cache.get(ref);
      assert.notEqual(fresh, old, 'rotated credentials: a new target');
      await fresh.store.put('rotate/probe', Buffer.from('ok'));
      assert.deepEqual(await fresh.store.getBuffer('rotate/probe'), Buffer.from('ok'));
      await assert.rejects(old.store.getBuffer('rotate/probe'), /credentials rejected/, 'the old key really is refused');
    } finally {
      await cache.close();
    }
  });

  test('agent: its catalog reads switch to the rotated key without a restart', async () => {
    const agent = startAgent(['-f', manifest, '--secrets-dir', secretsDir, '--state-dir', join(dir.path, 'agent-state'), '--refresh-interval', '1s'], { port: await freePort() });
    try {
      const view = async () => ((await (await fetch(`${agent.url}/status`)).json()) as AgentStatus).clusters[0];
      await waitFor('the first catalog read', async () => ((await view()).lastContact ? true : undefined), 60_000, agent);
      await rotate();
      const rotatedAt = Date.now();
      await waitFor(
        'a catalog read with the new key',
        async () => {
          const v = await view();
          return v.lastContact && Date.parse(v.lastContact) > rotatedAt && !v.lastError ? true : undefined;
        },
        60_000,
        agent,
      );
      assert.equal(agent.proc.exitCode, null, 'the same agent process');
    } finally {
      agent.proc.kill('SIGTERM');
      await agent.exited;
    }
  });
});
