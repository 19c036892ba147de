/**
 * Real PostgreSQL servers for tests: initdb + pg_ctl on a free loopback port, run as the
 * unprivileged "postgres" user when the tests run as root.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { findPgBinaries, type PgBinaries } from '../../src/pg/binaries.js';
import { pgCtlStart, pgCtlStop, runPgTool, serverIdentity, mkdirForServer, type RunAs } from '../../src/pg/local-server.js';
import { createCluster } from './initdb-template.js';
import { freePort } from './ports.js';
import { scratchDir } from './tmp.js';
import { stopWalDaemon, walRuntime } from '../../src/wal/runtime.js';

export interface PgServer {
  major: number;
  bin: PgBinaries;
  port: number;
  host: string;
  /** Directory holding pgdata, the log and anything else the test puts next to it. */
  baseDir: string;
  pgdata: string;
  logFile: string;
  who: RunAs | undefined;
  /** libpq environment for child processes (PGHOST, PGPORT, PGUSER, PGDATABASE). */
  env: Record<string, string>;
  query<T extends pg.QueryResultRow = any>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server (immediate) and the WAL daemon its archive_command started, then removes its files. */
  destroy(): Promise<void>;
  /** Appends settings to postgresql.conf (takes effect at next start or reload). */
  configure(settings: Record<string, string | number | boolean>): void;
  log(): string;
}

export interface StartOptions {
  major?: number;
  settings?: Record<string, string | number | boolean>;
  initdbArgs?: string[];
  /** Create the cluster but do not start it. */
  noStart?: boolean;
}

function render(settings: Record<string, string | number | boolean>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'\n`)
    .join('');
}

export const DEFAULT_MAJOR = Number(process.env.PGARK_TEST_PG_MAJOR ?? 15);

export async function startPostgres(opts: StartOptions = {}): Promise<PgServer> {
  const major = opts.major ?? DEFAULT_MAJOR;
  const bin = findPgBinaries(major);
  const who = serverIdentity();
  const dir = scratchDir(`pg${major}`);
  const pgdata = join(dir.path, 'data');
  const sockDir = join(dir.path, 'sock');
  mkdirForServer(sockDir, who);
  const logFile = join(dir.path, 'postgres.log');
  await createCluster(bin, pgdata, who, opts.initdbArgs ?? ['--data-checksums']);
  const port = await freePort();
  const host = '127.0.0.1';
  const server: PgServer = {
    major,
    bin,
    port,
    host,
    baseDir: dir.path,
    pgdata,
    logFile,
    who,
    env: { PGHOST: host, PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' },
    async query(sql, params, database = 'postgres') {
      const client = new pg.Client({ host, port, user: 'postgres', database });
      await client.connect();
      try {
        return (await client.query(sql, params as any[])).rows;
      } finally {
        await client.end();
      }
    },
    async start() {
      await pgCtlStart(bin, pgdata, who, { logFile });
    },
    async stop(mode = 'fast') {
      await pgCtlStop(bin, pgdata, who, mode);
    },
    async destroy() {
      try {
        await pgCtlStop(bin, pgdata, who, 'immediate');
      } catch {
        // already stopped
      }
      await stopWalDaemon(walRuntime(pgdata));
      dir.cleanup();
    },
    configure(settings) {
      appendFileSync(join(pgdata, 'postgresql.conf'), render(settings));
    },
    log() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
  server.configure({
    port,
    listen_addresses: host,
    unix_socket_directories: sockDir,
    wal_level: 'replica',
    max_wal_senders: 5,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'on',
    shared_buffers: '64MB',
    ...opts.settings,
  });
  if (!opts.noStart) await server.start();
  return server;
}

/** A copy of a base backup running as its own server in archive recovery (startRecovery). */
export interface RecoveringServer {
  port: number;
  logFile: string;
  query(sql: string): Promise<any[]>;
  /** Resolves once the server has left recovery (promoted); fails with the log's tail after timeoutMs. */
  promoted(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a base backup of `source` (a plain copy in backupDir) with recovery.signal and these
 * settings (restore_command, ...) on a port and socket directory of its own, as source's OS user.
 */
export async function startRecovery(source: PgServer, backupDir: string, socketDir: string, settings: Record<string, string>): Promise<RecoveringServer> {
  const port = await freePort();
  writeFileSync(join(backupDir, 'recovery.signal'), '');
  writeFileSync(join(backupDir, 'postgresql.auto.conf'), render({ port, archive_mode: 'off', unix_socket_directories: socketDir, ...settings }));
  if (source.who) await runPgTool('chown', ['-R', `${source.who.uid}:${source.who.gid}`, backupDir]);
  const logFile = join(dirname(backupDir), `${basename(backupDir)}.log`);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '');
  const started = await runPgTool(source.bin.path('pg_ctl'), ['-D', backupDir, '-l', logFile, '-w', '-t', '300', 'start'], { who: source.who });
  if (started.code !== 0) throw new Error(`the recovering server did not start: ${started.stderr}\n${log()}`);
  const query = async (sql: string) => {
    const c = new pg.Client({ host: source.host, port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  };
  return {
    port,
    logFile,
    query,
    async promoted(timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await query('SELECT pg_is_in_recovery() AS r'))[0].r) {
        if (Date.now() > deadline) throw new Error(`recovery did not finish\n${log()}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    },
    async stop() {
      await runPgTool(source.bin.path('pg_ctl'), ['-D', backupDir, '-m', 'immediate', '-w', 'stop'], { who: source.who });
    },
  };
}
