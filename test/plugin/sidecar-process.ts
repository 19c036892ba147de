/**
 * The plugin as CNPG runs it, for the Backup, Metrics and RestoreJobHooks tests: `pgark plugin
 * serve` as its own process, under the PostgreSQL server's OS user (CNPG's sidecar shares the
 * postgres container's uid, volumes and environment), reached through the test client built from
 * the upstream protos. Also the ObjectStore + Secret manifest it reads with -f, the Cluster JSON
 * CNPG would send, and PostgreSQL's archive/restore commands relayed to the plugin's WAL service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../../src/pg/binaries.js';
import { mkdirForServer, serverIdentity } from '../../src/pg/local-server.js';
import { clusterJson, cnpgClient, IDENTITY, objectStoreDoc, type CnpgClient } from '../harness/cnpg-client.js';
import type { TestStore } from '../harness/stores.js';

export const PLUGIN_NAME = 'pgark.io';
const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');
const WAL_COMMAND = join(PACKAGE_ROOT, 'dist', 'test', 'harness', 'cnpg-wal-command.js');

/** ObjectStore `name` around `store` (serverName stays in the Cluster's plugin parameters) plus the Secret it references. */
export function objectStoreManifest(dir: string, store: TestStore, names: string[], extraConfig: Record<string, unknown> = {}): string {
  const config = { ...store.objectStoreConfig(), ...extraConfig };
  const docs: object[] = names.map((n) => objectStoreDoc(n, config));
  if (Object.keys(store.secretValues).length) docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: store.secretName }, stringData: store.secretValues });
  const file = join(dir, 'objectstores.yaml');
  writeFileSync(file, docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n'));
  chmodSync(file, 0o644);
  return file;
}

/** Writes what the WAL relay script reads: the Cluster JSON and the plugin entry's parameters. */
export function writeClusterFiles(dir: string, cluster: object, parameters: Record<string, string>): { clusterFile: string; paramsFile: string } {
  const clusterFile = join(dir, 'cluster.json');
  const paramsFile = join(dir, 'params.json');
  writeFileSync(clusterFile, clusterJson(cluster));
  writeFileSync(paramsFile, JSON.stringify(parameters));
  chmodSync(clusterFile, 0o644);
  chmodSync(paramsFile, 0o644);
  return { clusterFile, paramsFile };
}

/** archive_command / restore_command that relay to the plugin's WAL service, as CNPG's /controller/manager does. */
export function walCommand(op: 'archive' | 'restore', socket: string, files: { clusterFile: string; paramsFile: string }): string {
  const placeholders = op === 'archive' ? '%p' : '%f %p';
  return `${process.execPath} ${WAL_COMMAND} ${op} ${socket} ${files.clusterFile} ${files.paramsFile} ${placeholders}`;
}

export interface Sidecar {
  pid: number;
  socket: string;
  client: CnpgClient;
  /** What the plugin logged so far (stderr). */
  log(): string;
  /** Peak resident set of the plugin process so far (VmHWM), in bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

export async function startSidecar(o: { role: 'instance' | 'restore'; dir: string; files: string[]; env?: Record<string, string> }): Promise<Sidecar> {
  const who = serverIdentity();
  const socketDir = join(o.dir, 'plugins');
  mkdirForServer(o.dir, who, 0o755);
  mkdirForServer(socketDir, who, 0o755);
  const socket = join(socketDir, PLUGIN_NAME);
  const args = [PGARK, 'plugin', 'serve', '--role', o.role, '--name', PLUGIN_NAME, '--socket-dir', socketDir, ...o.files.flatMap((f) => ['-f', f])];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, PGARK_LOG_LEVEL: 'info', ...o.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    uid: who?.uid,
    gid: who?.gid,
    cwd: o.dir,
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 300 && !existsSync(socket); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`the plugin did not listen on ${socket}:\n${stderr}`);
  }
  const client = cnpgClient(socket);
  await client.call(IDENTITY, 'GetPluginMetadata');
  return {
    pid: child.pid!,
    socket,
    client,
    log: () => stderr,
    peakRss: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    },
    async stop() {
      client.close();
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
