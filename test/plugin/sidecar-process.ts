/**
 * The plugin as CNPG runs it, for the Backup, Metrics and RestoreJobHooks tests: `pgark plugin
 * serve` as its own process, under the PostgreSQL server's OS user (CNPG's sidecar shares the
 * postgres container's uid, volumes and environment), reached through the test client built from
 * the upstream protos (the process itself is helpers.ts startPluginProcess). Also the Cluster JSON
 * CNPG would send and PostgreSQL's archive/restore commands relayed to the plugin's WAL service.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { mkdirForServer, serverIdentity } from '../../src/pg/local-server.js';
import { clusterJson, cnpgClient, type CnpgClient } from '../harness/cnpg-client.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startPluginProcess } from './helpers.js';

export const PLUGIN_NAME = 'pgark.io';
const WAL_COMMAND = join(PACKAGE_ROOT, 'dist', 'test', 'harness', 'cnpg-wal-command.js');

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
  /** What the plugin logged so far. */
  log(): string;
  /** Peak resident set of the plugin process so far (VmHWM), in bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

/** The plugin of `role` under the server's OS user, its socket in DIR/plugins, with a client connected. */
export async function startSidecar(o: { role: 'instance' | 'restore'; dir: string; files: string[]; env?: Record<string, string>; args?: string[]; withoutServerBinaries?: boolean }): Promise<Sidecar> {
  const who = serverIdentity();
  const socketDir = join(o.dir, 'plugins');
  mkdirForServer(o.dir, who, 0o755);
  mkdirForServer(socketDir, who, 0o755);
  const plugin = await startPluginProcess({ socketDir, role: o.role, name: PLUGIN_NAME, args: [...o.files.flatMap((f) => ['-f', f]), ...(o.args ?? [])], env: o.env, who, withoutServerBinaries: o.withoutServerBinaries });
  const client = cnpgClient(plugin.socketPath);
  return {
    pid: plugin.child.pid!,
    socket: plugin.socketPath,
    client,
    log: plugin.output,
    peakRss: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${plugin.child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    },
    async stop() {
      client.close();
      await plugin.stop();
    },
  };
}

export interface PluginArchivedServer {
  pg: PgServer;
  sidecar: Sidecar;
  /** The Cluster JSON and parameters files the WAL relay reads. */
  files: { clusterFile: string; paramsFile: string };
}

/**
 * A PostgreSQL 15 whose archive_command goes to an instance sidecar's WAL.Archive, with the
 * sidecar given the postgres container's environment (here the harness server's socket directory).
 */
export async function startPluginArchivedServer(o: {
  dir: string;
  manifests: string[];
  cluster: object;
  parameters: Record<string, string>;
  env?: Record<string, string>;
  /** Give the connection as --pghost/--pgport/--pguser/--pgdata, with the PG* variables pointing nowhere. */
  pgFlags?: boolean;
}): Promise<PluginArchivedServer> {
  const files = writeClusterFiles(o.dir, o.cluster, o.parameters);
  const pg = await startPostgres({ noStart: true });
  const conn = { PGHOST: join(pg.baseDir, 'sock'), PGPORT: String(pg.port), PGUSER: 'postgres', PGDATA: pg.pgdata };
  const nowhere = { PGHOST: '/nonexistent', PGPORT: '1', PGUSER: 'nobody', PGDATA: '/nonexistent' };
  const sidecar = await startSidecar({
    role: 'instance',
    dir: join(o.dir, 'instance'),
    files: o.manifests,
    env: { ...(o.pgFlags ? nowhere : conn), ...o.env },
    args: o.pgFlags ? ['--pghost', conn.PGHOST, '--pgport', conn.PGPORT, '--pguser', conn.PGUSER, '--pgdata', conn.PGDATA] : [],
  });
  pg.configure({ archive_mode: 'on', archive_command: walCommand('archive', sidecar.socket, files) });
  await pg.start();
  return { pg, sidecar, files };
}
