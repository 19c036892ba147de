/**
 * Shared pieces of the plugin tests: `pgark plugin serve` as a child process (optionally as
 * PostgreSQL's OS user, as the sidecar runs with the postgres container's uid), its log, and the
 * -f manifests a plugin reads (ObjectStore + Secret around a test store).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { stringify } from 'yaml';
import type { RunAs } from '../../src/pg/local-server.js';
import { objectStoreDoc } from '../harness/cnpg-client.js';
import type { TestStore } from '../harness/stores.js';
import { PGARK } from '../wal/helpers.js';

export interface PluginProcess {
  socketPath: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit status once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit status. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface PluginProcessOptions {
  socketDir: string;
  /** Pass socketDir as PLUGIN_SOCKET_DIR instead of --socket-dir. */
  socketDirFromEnv?: boolean;
  role?: string;
  name?: string;
  /** More arguments (-f, --secrets-dir). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  who?: RunAs;
  /**
   * Run as pgark's image does, without PostgreSQL server binaries: in a mount namespace of its
   * own with every place pgark finds them (Debian's /usr/lib/postgresql, the pgNN npm packages)
   * covered by an empty tmpfs, and PATH without them. Needs root (the test runner is), which is
   * dropped to `who` after the mounts.
   */
  withoutServerBinaries?: boolean;
}

/** The directories findPgBinaries looks in, as real paths (node_modules may be a symlink). */
function serverBinaryDirs(): string[] {
  const npm = [14, 15, 16, 17, 18].map((m) => join(PACKAGE_ROOT, 'node_modules', `pg${m}`, 'native', 'bin'));
  return ['/usr/lib/postgresql', ...npm].filter((d) => existsSync(d)).map((d) => realpathSync(d));
}

/** The command line that runs `args` without server binaries (see withoutServerBinaries). */
function withoutBinaries(args: string[], who: RunAs | undefined): [string, string[]] {
  const mounts = serverBinaryDirs().map((d) => `mount -t tmpfs -o ro,size=1k none '${d}'`).join(' && ');
  const drop = who ? ['setpriv', `--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups'] : [];
  return ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', `${mounts} && exec "$@"`, 'sh', ...drop, process.execPath, ...args]];
}

/** Polls `cond` (every 100 ms, at most a minute) until it holds: waiting for an event, not for a time. */
export async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Starts `pgark plugin serve` and waits until it serves calls, or rejects with its output when it exits first. */
export async function startPluginProcess(o: PluginProcessOptions): Promise<PluginProcess> {
  const name = o.name ?? 'pgark.io';
  const dirFlag = o.socketDirFromEnv ? [] : ['--socket-dir', o.socketDir];
  const args = [PGARK, 'plugin', 'serve', '--role', o.role ?? 'instance', '--name', name, ...dirFlag, ...(o.args ?? [])];
  const [command, commandArgs] = o.withoutServerBinaries ? withoutBinaries(args, o.who) : [process.execPath, args];
  const child = spawn(command, commandArgs, {
    env: {
      ...process.env,
      PGARK_LOG_LEVEL: 'debug',
      ...(o.socketDirFromEnv ? { PLUGIN_SOCKET_DIR: o.socketDir } : {}),
      ...(o.withoutServerBinaries ? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } : {}),
      ...o.env,
    },
    uid: o.withoutServerBinaries ? undefined : o.who?.uid,
    gid: o.withoutServerBinaries ? undefined : o.who?.gid,
    cwd: '/tmp',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));
  const ready = await Promise.race([
    new Promise<'ready'>((resolve) => {
      const check = () => (output.includes('ready for calls') ? resolve('ready') : child.stderr!.once('data', check));
      check();
    }),
    exited.then(() => 'exited' as const),
  ]);
  if (ready !== 'ready') throw new Error(`pgark plugin serve exited before serving:\n${output}`);
  const socketPath = join(o.socketDir, name);
  return {
    socketPath,
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A -f file with the ObjectStore `objectName` for `store` and the Secret its credentials name; returns its path. */
export function writeStoreManifests(dir: string, store: TestStore, objectName: string, opts: { configuration?: object; extraDocs?: object[] } = {}): string {
  const docs: object[] = [objectStoreDoc(objectName, { ...store.objectStoreConfig(), ...opts.configuration })];
  if (Object.keys(store.secretValues).length > 0) {
    docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: store.secretName }, type: 'Opaque', stringData: store.secretValues });
  }
  docs.push(...(opts.extraDocs ?? []));
  const file = join(dir, `${objectName}.yaml`);
  writeFileSync(file, docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n'));
  return file;
}
