/**
 * Shared pieces of the base-backup tests: a real PostgreSQL archiving its WAL with
 * `pgark wal-archive` into a test store, the pgark CLI as a child process, and a checksum of
 * the test data to compare a restored server with its origin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { startPostgres, type PgServer, type StartOptions } from '../harness/postgres.js';
import type { TestStore } from '../harness/stores.js';
import { PGARK_LAUNCHER } from '../harness/wal-processes.js';
import { scratchDir } from '../harness/tmp.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupPrefix } from '../../src/catalog/layout.js';
import { claimState, isClaimKey } from '../../src/catalog/claims.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectInfo } from '../../src/storage/types.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');

export function run(cmd: string, args: string[], env: Record<string, string> = {}, opts: { uid?: number; gid?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd ?? '/tmp', uid: opts.uid, gid: opts.gid });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export function pgark(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, [PGARK, ...args], { PGARK_LOG_LEVEL: 'warn', ...env });
}

export interface ArchivingServer {
  pg: PgServer;
  /** Cluster + Secret manifest (readable by the postgres user). */
  manifest: string;
  clusterName: string;
}

/**
 * archive_command as a user writes it: the sh launcher, answered by the data directory's resident WAL
 * daemon (a Node start per segment otherwise; the harness's destroy() stops the daemon).
 */
export function walArchiveCommand(manifest: string): string {
  return `PGARK_NODE=${process.execPath} ${PGARK_LAUNCHER} wal-archive -f ${manifest} %p`;
}

/** A PostgreSQL whose archive_command is `pgark wal-archive` into `store` (serverName = clusterName). */
export async function startArchivingServer(store: TestStore, opts: StartOptions & { clusterName?: string; objectStore?: Record<string, unknown> } = {}): Promise<ArchivingServer> {
  const clusterName = opts.clusterName ?? 'pg';
  const pg = await startPostgres({ ...opts, noStart: true });
  const manifest = join(pg.baseDir, 'cluster.yaml');
  writeFileSync(manifest, store.manifest({ clusterName, objectStore: opts.objectStore }));
  chmodSync(manifest, 0o644);
  pg.configure({
    archive_mode: 'on',
    archive_command: walArchiveCommand(manifest),
    ...opts.settings,
  });
  await pg.start();
  return { pg, manifest, clusterName };
}

/** The catalog of one server in a test store, as pgark reads it. */
export async function storeCatalog(store: TestStore, serverName: string) {
  const os = await openObjectStore(store.resolved(serverName));
  try {
    return await listBackups(os, serverName);
  } finally {
    await os.close();
  }
}

/** Every object under `prefix` in a test store. */
export async function storeObjects(store: TestStore, prefix: string): Promise<ObjectInfo[]> {
  const os = await openObjectStore(store.resolved());
  try {
    const out: ObjectInfo[] = [];
    for await (const e of os.list(prefix)) if (e.object) out.push(e.object);
    return out;
  } finally {
    await os.close();
  }
}

/** Deterministic test data: a table with a few thousand rows. */
export async function createTestData(pg: PgServer, rows = 5000, tablespace?: string): Promise<void> {
  await pg.query(
    `CREATE TABLE IF NOT EXISTS t (id int primary key, payload text)${tablespace ? ` TABLESPACE ${tablespace}` : ''};
     INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g ON CONFLICT DO NOTHING`,
  );
}

/** Row count and md5 of the ordered table, to compare a restored server with its origin. */
export async function tableChecksum(pg: PgServer, table = 't'): Promise<{ count: number; md5: string }> {
  const r = await pg.query<{ count: string; md5: string }>(`SELECT count(*)::text AS count, md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) AS md5 FROM ${table}`);
  return { count: Number(r[0].count), md5: r[0].md5 };
}

/**
 * Starts PostgreSQL on a restored data directory in archive recovery (recovery.signal +
 * restore_command), waits until recovery has ended, and returns a client-like handle.
 * `toConsistency` stops the recovery where the backup became consistent and promotes there
 * (recovery_target = 'immediate'): the backup's own WAL is replayed, none after it is asked for.
 */
export async function startRestored(
  major: number,
  pgdata: string,
  restoreCommand: string,
  /** Directories outside pgdata the server must own (restored tablespaces). */
  ownedDirs: string[] = [],
  { toConsistency = false }: { toConsistency?: boolean } = {},
): Promise<{ query: PgServer['query']; port: number; stop(): Promise<void>; log(): string }> {
  const { findPgBinaries } = await import('../../src/pg/binaries.js');
  const { serverIdentity, chownTree, pgCtlStart, pgCtlStop } = await import('../../src/pg/local-server.js');
  const { freePort } = await import('../harness/ports.js');
  const { appendFileSync, readFileSync, chmodSync: chmod, writeFileSync: write } = await import('node:fs');
  const pgClient = (await import('pg')).default;
  const bin = findPgBinaries(major);
  const who = serverIdentity();
  const port = await freePort();
  // A socket directory of its own under the scratch root: beside a data directory deep in a test's
  // scratch, `.s.PGSQL.<port>.lock` can pass the 107 bytes a socket path may hold.
  const sockDir = scratchDir('sock');
  const sock = sockDir.path;
  appendFileSync(
    join(pgdata, 'postgresql.conf'),
    `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${sock}'\narchive_mode = off\nrestore_command = '${restoreCommand.replace(/'/g, "''")}'\n` +
      (toConsistency ? "recovery_target = 'immediate'\nrecovery_target_action = 'promote'\n" : ''),
  );
  write(join(pgdata, 'recovery.signal'), '');
  chownTree(pgdata, who);
  chownTree(sock, who);
  for (const d of ownedDirs) chownTree(d, who);
  chmod(pgdata, 0o700);
  const logFile = `${pgdata}.log`;
  await pgCtlStart(bin, pgdata, who, { logFile });
  const query: PgServer['query'] = async (sql, params, database = 'postgres') => {
    const c = new pgClient.Client({ host: '127.0.0.1', port, user: 'postgres', database });
    await c.connect();
    try {
      return (await c.query(sql, params as unknown[])).rows;
    } finally {
      await c.end();
    }
  };
  for (let i = 0; i < 600; i++) {
    const r = await query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    if (!r[0].rec) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return {
    query,
    port,
    stop: async () => {
      try {
        await pgCtlStop(bin, pgdata, who, 'immediate');
      } finally {
        sockDir.cleanup();
      }
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

/**
 * Starts PostgreSQL 15 on a restored data directory with barman-cloud-wal-restore 3.4 as
 * restore_command (the store's environment inlined for sh) and checks that it reaches consistency
 * and holds the `expected` test data, taken before the backup; stops it afterwards. It recovers to
 * the backup's consistent point: each call starts Python and boto3, and the WAL archived after the
 * backup would only cost more of them.
 */
export async function recoverWithBarmanWal(store: TestStore, serverName: string, pgdata: string, expected: { count: number; md5: string }): Promise<void> {
  const env = Object.entries(store.barman!.env)
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');
  const restored = await startRestored(15, pgdata, `${env} barman-cloud-wal-restore ${store.barman!.args.join(' ')} ${store.destinationPath} ${serverName} %f %p`, [], { toConsistency: true });
  try {
    if (!/consistent recovery state reached/.test(restored.log())) throw new Error(`no consistent recovery state in the server log:\n${restored.log()}`);
    const got = await tableChecksum({ query: restored.query } as never);
    if (got.count !== expected.count || got.md5 !== expected.md5) throw new Error(`restored data differ: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`);
  } finally {
    await restored.stop();
  }
}

/**
 * Holds WAL archiving back until open() is called: archive_command waits for a gate file, so a
 * backup stops at "waiting for WAL" with every tar stored, for as long as a test needs it there,
 * and the archiver reports no failure meanwhile.
 */
export async function closeArchiveGate(server: ArchivingServer): Promise<{ open(): Promise<void> }> {
  const gate = join(server.pg.baseDir, 'archive-gate');
  rmSync(gate, { force: true });
  await server.pg.query(`ALTER SYSTEM SET archive_command = 'while [ ! -e ${gate} ]; do sleep 0.1; done; ${walArchiveCommand(server.manifest)}'`);
  await server.pg.query('SELECT pg_reload_conf()');
  return {
    open: async () => {
      writeFileSync(gate, '');
      await server.pg.query('ALTER SYSTEM RESET archive_command');
      await server.pg.query('SELECT pg_reload_conf()');
    },
  };
}

/** `pgark backup` in the background (as root, JSON logs), resolved once its log matches `until`; `done` is its exit code. */
export async function backupInBackground(
  server: ArchivingServer,
  until: RegExp,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; backupId: string; done: Promise<number>; stderr(): string }> {
  const child = spawn(process.execPath, [PGARK, 'backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--wal-timeout', '600', ...args], {
    env: { ...process.env, ...server.pg.env, PGARK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const done = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (until.test(stderr)) resolve();
    });
    void done.then(() => reject(new Error(`backup exited early: ${stderr}`)));
  });
  return { child, backupId: /"backupId":"(\d{8}T\d{6})"/.exec(stderr)![1], done, stderr: () => stderr };
}

/** A background `pgark backup` caught after its tars are stored, waiting for its end WAL. */
export function backupUntilWalWait(server: ArchivingServer, args: string[], env: Record<string, string> = {}) {
  return backupInBackground(server, /waiting for WAL/, args, env);
}

/** Waits until the claim a killed backup left stops counting as live (its own stale time, read from the claim). */
export async function waitForStaleClaim(store: TestStore, serverName: string, backupId: string): Promise<void> {
  const os = await openObjectStore(store.resolved(serverName));
  try {
    for await (const e of os.list(backupPrefix(serverName, backupId))) {
      if (!e.object || !isClaimKey(e.object.key)) continue;
      const state = claimState((await os.getBuffer(e.object.key)).toString(), e.object.lastModified, new Date());
      await new Promise((r) => setTimeout(r, Math.max(0, state.staleAt!.getTime() - Date.now()) + 1000));
    }
  } finally {
    await os.close();
  }
}
