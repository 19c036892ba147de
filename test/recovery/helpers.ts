/**
 * Recovery test pieces: an origin PostgreSQL archiving with `pgark wal-archive` and backed up
 * with `pgark backup`, recovery manifests in the seed's shape (source + externalClusters, or
 * backup.name), and `pgark restore` as a child process with the recovered server cleaned up.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { findPgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStop, serverIdentity } from '../../src/pg/local-server.js';
import { freePort } from '../harness/ports.js';
import type { PgServer } from '../harness/postgres.js';
import type { TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK, pgark, run, startArchivingServer, type ArchivingServer, type RunResult } from '../backup/helpers.js';
import { stopWalDaemon } from '../wal/helpers.js';

export { pgark, type RunResult };

export interface Origin extends ArchivingServer {
  store: TestStore;
}

export async function startOrigin(store: TestStore, opts: { clusterName?: string; major?: number; objectStore?: Record<string, unknown> } = {}): Promise<Origin> {
  const server = await startArchivingServer(store, { clusterName: opts.clusterName ?? 'origin', major: opts.major, objectStore: opts.objectStore });
  await server.pg.query('CREATE TABLE rows (batch int, id serial primary key, at timestamptz default clock_timestamp())');
  return { ...server, store };
}

/**
 * Takes a base backup with `pgark backup`, as the server's OS user (as CNPG runs it in the pod,
 * and so that store folders it creates stay writable by archive_command); returns its ID.
 */
export async function backupCluster(manifest: string, pgdata: string, env: Record<string, string>, extra: string[] = []): Promise<string> {
  const who = serverIdentity();
  const args = [PGARK, 'backup', '-f', manifest, '--immediate-checkpoint', '--json', '--no-progress', '--pgdata', pgdata, ...extra];
  const r = await run(process.execPath, args, { PGARK_LOG_LEVEL: 'warn', ...env }, { uid: who?.uid, gid: who?.gid });
  if (r.code !== 0) throw new Error(`pgark backup failed: ${r.stderr}`);
  return JSON.parse(r.stdout).backup_id;
}

export function backupOrigin(origin: Origin, extra: string[] = []): Promise<string> {
  return backupCluster(origin.manifest, origin.pg.pgdata, origin.pg.env, extra);
}

export async function insertBatch(pg: Pick<PgServer, 'query'>, batch: number, rows = 3): Promise<void> {
  await pg.query(`INSERT INTO rows (batch) SELECT $1 FROM generate_series(1, ${rows})`, [batch]);
}

/** Forces the current WAL segment out and waits until the archiver has stored it. */
export async function archiveCurrentWal(pg: Pick<PgServer, 'query'> & { log?(): string }): Promise<void> {
  const [{ name }] = await pg.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name');
  for (let i = 0; i < 600; i++) {
    const [s] = await pg.query<{ last: string | null; failed: string | null }>('SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver');
    if (s.last && s.last >= name) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`WAL ${name} was not archived: ${pg.log?.().slice(-2000) ?? ''}`);
}

export interface RecoveryManifestOptions {
  name: string;
  /** Server folder the recovered cluster archives to (default: its name). */
  serverName?: string;
  sourceName: string;
  sourceServerName?: string;
  recoveryTarget?: Record<string, unknown>;
  database?: string;
  owner?: string;
  imageName?: string;
  annotations?: Record<string, string>;
  maxParallel?: number;
  /** Use bootstrap.recovery.backup.name instead of source. */
  backupName?: string;
  /** No spec.backup section. */
  noBackup?: boolean;
}

/** The seed's "Recovery Manifest Example", pointed at a test store. */
export function recoveryManifest(store: TestStore, o: RecoveryManifestOptions): string {
  const recovery: Record<string, unknown> = o.backupName ? { backup: { name: o.backupName } } : { source: o.sourceName };
  if (o.recoveryTarget) recovery.recoveryTarget = o.recoveryTarget;
  if (o.database) Object.assign(recovery, { database: o.database, owner: o.owner });
  const cluster = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: o.name, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: {
      ...(o.imageName ? { imageName: o.imageName } : {}),
      instances: 1,
      bootstrap: { recovery },
      ...(o.backupName
        ? {}
        : { externalClusters: [{ name: o.sourceName, barmanObjectStore: { ...store.objectStoreConfig(o.sourceServerName), wal: { maxParallel: o.maxParallel ?? 4 } } }] }),
      ...(o.noBackup ? {} : { backup: { barmanObjectStore: store.objectStoreConfig(o.serverName ?? o.name) } }),
    },
  };
  const docs: unknown[] = [cluster];
  if (Object.keys(store.secretValues).length) docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: store.secretName }, stringData: store.secretValues });
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

export interface Recovered {
  dir: string;
  pgdata: string;
  port: number;
  manifest: string;
  query<T extends pg.QueryResultRow = any>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Stops the recovered server (if running) and removes its files. */
  destroy(): Promise<void>;
}

/** Writes the manifest and runs `pgark restore` into a fresh directory (under `wrapper`, e.g. strace, when given; with `env` added). */
export async function restore(manifestText: string, args: string[] = [], wrapper: string[] = [], env: Record<string, string> = {}): Promise<{ result: RunResult; recovered: Recovered }> {
  const dir = scratchDir('recovered');
  const manifest = join(dir.path, 'recovery-cluster.yaml');
  writeFileSync(manifest, manifestText);
  chmodSync(manifest, 0o644);
  const pgdata = join(dir.path, 'data');
  const port = await freePort();
  const restoreArgs = ['restore', '-f', manifest, '--pgdata', pgdata, '--pghost', '127.0.0.1', '--pgport', String(port), ...args];
  const result = wrapper.length
    ? await run(wrapper[0], [...wrapper.slice(1), process.execPath, PGARK, ...restoreArgs], { PGARK_LOG_LEVEL: 'warn', ...env })
    : await pgark(restoreArgs, env);
  const recovered: Recovered = {
    dir: dir.path,
    pgdata,
    port,
    manifest,
    async query(sql, params, database = 'postgres') {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
      await c.connect();
      try {
        return (await c.query(sql, params as unknown[])).rows;
      } finally {
        await c.end();
      }
    },
    async destroy() {
      if (existsSync(join(pgdata, 'postmaster.pid'))) {
        const version = Number(readFileSync(join(pgdata, 'PG_VERSION'), 'utf8').trim());
        await pgCtlStop(findPgBinaries(version), pgdata, serverIdentity(), 'immediate').catch(() => undefined);
      }
      // The WAL daemon `restore --start` left may still be prefetching into the directory being removed.
      await stopWalDaemon(pgdata);
      dir.cleanup();
    },
  };
  return { result, recovered };
}

/** Batches present in the recovered server's `rows` table. */
export async function batches(r: Recovered): Promise<number[]> {
  const rows = await r.query<{ batch: number }>('SELECT DISTINCT batch FROM rows ORDER BY batch');
  return rows.map((x) => x.batch);
}
