/**
 * Credential rotation in the middle of a long backup, done the way an operator does it: the store
 * accepts the old and the new key, the mounted Secret volume is swapped the Kubernetes way (a new
 * timestamped directory, then an atomic rename of the ..data symlink), then the store revokes the
 * old key. The store is Azurite with AZURITE_ACCOUNTS, restarted with each key set: s3rver accepts
 * any key, so only Azurite can tell an old key from a new one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, type Azurite } from '../../test/harness/azurite.js';
import { matchers } from '../../test/harness/http-faults.js';
import { freePort, waitForPort } from '../../test/harness/ports.js';
import { binPath } from '../../test/harness/server-process.js';
import { scratchDir } from '../../test/harness/tmp.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backup, checkArchive, checkBackups, checkSecrets, checkStuck, pgbench, sleep, startSite, waitArchived, writeRows, type Site } from './site.js';
import { count, type Tally } from './tally.js';
import type { Cell } from './cell.js';

const CONTAINER = 'pgark';

/** Azurite on one port and data directory, restarted to change which keys the account has. */
class KeyedAzurite {
  private child?: ChildProcess;
  constructor(
    readonly port: number,
    private readonly dataDir: string,
  ) {}

  async start(keys: string[]): Promise<void> {
    await this.stop();
    this.child = spawn(binPath('azurite-blob'), ['--blobHost', '127.0.0.1', '--blobPort', String(this.port), '--location', this.dataDir, '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'], {
      env: { ...process.env, AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${keys.join(':')}` },
      stdio: 'ignore',
    });
    await waitForPort(this.port);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** What startStore needs to build an azure-key store on it. */
  view(key: string): Azurite {
    const blobEndpoint = `http://127.0.0.1:${this.port}/${AZURITE_ACCOUNT}`;
    return {
      port: this.port,
      account: AZURITE_ACCOUNT,
      accountKey: key,
      blobEndpoint,
      container: CONTAINER,
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=${blobEndpoint};`,
      sasToken: '',
      sasConnectionString: '',
      dataDir: this.dataDir,
      createContainer: async (name) => {
        await new BlobServiceClient(blobEndpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, key)).getContainerClient(name).createIfNotExists();
      },
      stop: () => this.stop(),
    };
  }
}

/** Writes a Secret volume as the kubelet does: files in a new ..<timestamp> directory, ..data swapped atomically, the old directory removed. */
function mountSecret(secretsDir: string, name: string, values: Record<string, string>, generation: number): void {
  const volume = join(secretsDir, name);
  const previous = existsSync(join(volume, '..data')) ? join(volume, readlinkSync(join(volume, '..data'))) : undefined;
  const version = `..2026_12_05_00_${String(generation).padStart(4, '0')}.${randomBytes(4).toString('hex')}`;
  mkdirSync(join(volume, version), { recursive: true });
  for (const [k, v] of Object.entries(values)) writeFileSync(join(volume, version, k), v);
  symlinkSync(version, join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  for (const k of Object.keys(values)) if (!existsSync(join(volume, k))) symlinkSync(join('..data', k), join(volume, k));
  if (previous) rmSync(previous, { recursive: true, force: true });
}

const int = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** The daemon serving the data directory now (its PID file), to tell a rotation picked up in place from a restart. */
function daemonPid(site: Site): string | undefined {
  try {
    return readFileSync(walRuntime(site.pg.pgdata).lockFile, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A backup that exited 0 must be DONE in the catalog (checkBackups then verifies every DONE one). */
async function checkReportedDone(site: Site, t: Tally, trial: number, stdout: string): Promise<void> {
  let id: string | undefined;
  try {
    id = JSON.parse(stdout).backup_id;
  } catch {
    // no JSON: counted below as not DONE
  }
  const store = await site.open();
  try {
    const b = (await listBackups(store, site.clusterName)).backups.find((x) => x.backup_id === id);
    if (b?.status !== 'DONE') count(t, 'doneIncomplete', trial, `backup exited 0 but ${id ?? '(no backup_id printed)'} is ${b?.status ?? 'not in the catalog'}`);
  } finally {
    await store.close();
  }
}

export const rotationCells: Cell[] = [
  {
    name: 'azure-credential-rotation',
    about: 'azure: the account key is rotated (store takes both, --secrets-dir volume swapped, old key revoked) during a slow backup and under WAL archiving',
    kind: 'credentials',
    async run(ctx, t) {
      const dir = scratchDir('faults-rotation');
      const secretsDir = join(dir.path, 'secrets');
      const azurite = new KeyedAzurite(await freePort(), join(dir.path, 'azurite'));
      let key = randomBytes(64).toString('base64');
      let generation = 0;
      let site: Site | undefined;
      try {
        await azurite.start([key]);
        const view = azurite.view(key);
        await view.createContainer(CONTAINER);
        mountSecret(secretsDir, 'pgark-store-credentials', { AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: key }, generation++);
        site = await startSite(t.cell, {
          kind: 'azure-key',
          servers: { azurite: view },
          proxy: true,
          walCompression: 'gzip',
          secretsDir,
          // The daemon must outlive the trial, so that "without a restart" means something.
          archiveEnv: { PGARK_WAL_DAEMON_IDLE_SECONDS: '900' },
        });
        if (site.store.secretName !== 'pgark-store-credentials') throw new Error(`the test store's Secret is now ${site.store.secretName}`);
        const proxy = site.proxy!;
        await pgbench(site.pg, ['-i', '-s', ctx.quick ? '3' : '5', '-q']);
        for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
          t.trials++;
          await writeRows(site.pg, 2000);
          if (!(await waitArchived(site, t, trial))) continue;
          const pidBefore = daemonPid(site);
          proxy.add({ match: matchers.any, fault: { kind: 'delay', ms: 150 }, times: Infinity });
          const running = backup(site, { deadlineMs: 600_000 });
          await sleep(int(500, 5000));
          const next = randomBytes(64).toString('base64');
          site.secrets.push(next);
          await azurite.start([key, next]);
          mountSecret(secretsDir, site.store.secretName, { AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: next }, generation++);
          site.store.secretValues.AZURE_STORAGE_KEY = next;
          const load = writeRows(site.pg, 20_000);
          await sleep(int(0, 3000));
          await azurite.start([next]);
          key = next;
          await load;
          const r = await running;
          proxy.clear();
          checkStuck(t, trial, r, 'pgark backup across a key rotation');
          checkSecrets(t, trial, site.secrets, r, 'pgark backup across a key rotation');
          if (r.code === 0) await checkReportedDone(site, t, trial, r.stdout);
          const c = await checkBackups(site, t, trial);
          await pgbench(site.pg, ['-c', '2', '-T', '2', '-n']);
          if (await waitArchived(site, t, trial)) await checkArchive(site, t, trial);
          const pidAfter = daemonPid(site);
          if (pidBefore !== pidAfter) t.notes.push(`${t.cell} #${trial}: the WAL daemon changed (${pidBefore} -> ${pidAfter}): the rotation was not picked up in place`);
          ctx.log(`${t.cell} #${trial}: backup exit ${r.code ?? r.signal}${r.code ? `: ${r.stderr.trim().split('\n').pop()?.slice(0, 200)}` : ''}; ${c.done} DONE, ${c.other} other; WAL daemon ${pidBefore === pidAfter ? 'kept' : 'restarted'}`);
        }
      } finally {
        const pid = site && daemonPid(site);
        if (pid) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await site?.stop();
        await azurite.stop();
        dir.cleanup();
      }
    },
  },
];
