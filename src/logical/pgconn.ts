/** A PostgreSQL connection as the logical tools need it: libpq environment for child tools, pg.Client for checks. */
import type pg from 'pg';
import { clientTool } from '../pg/binaries.js';
import { UserError } from '../util/errors.js';
import { ChildStream } from '../io/child.js';
import { collect } from '../io/collect.js';
import { lazyRequire } from '../util/lazy-require.js';

/** Loaded by the first connection (src/pg/connect.ts says why). */
const pgModule = lazyRequire<typeof pg>('pg');

export interface PgConn {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** Storage secrets the PostgreSQL tools have no use for: kept out of their environment. */
const STORAGE_SECRETS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AZURE_STORAGE_ACCOUNT_KEY', 'LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY', 'DB_PASS'];

/** Environment for psql/pg_dump/pg_restore: the caller's PG* settings (sslmode...) overridden by this connection. */
export function toolEnv(conn: PgConn, database = conn.database): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: conn.host, PGPORT: String(conn.port), PGUSER: conn.user, PGDATABASE: database };
  for (const name of STORAGE_SECRETS) delete env[name];
  if (conn.password !== undefined) env.PGPASSWORD = conn.password;
  else delete env.PGPASSWORD;
  return env;
}

export async function withClient<T>(conn: PgConn, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new (pgModule().Client)({ host: conn.host, port: conn.port, user: conn.user, password: conn.password, database, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** "host:port as user" for messages; never the password. */
export function describeConn(conn: PgConn, database = conn.database): string {
  return `database "${database}" on ${conn.host}:${conn.port} as user "${conn.user}"`;
}

/** Turns a connection failure into a UserError that says what was tried and what to check. */
export function connectionError(conn: PgConn, database: string, err: unknown): UserError {
  const e = err as { code?: string; message?: string };
  const detail = e.code === '28P01' ? 'password authentication failed' : (e.message ?? String(err)).split('\n')[0];
  return new UserError(`cannot connect to ${describeConn(conn, database)}: ${detail}`, 'check DB_HOST / DB_PORT / DB_USER / DB_PASS (or PGHOST / PGPORT / PGUSER / PGPASSWORD) and that the server accepts connections');
}

export async function serverVersion(conn: PgConn, database: string): Promise<string> {
  try {
    return await withClient(conn, database, async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version);
  } catch (err) {
    throw connectionError(conn, database, err);
  }
}

/** Version line of a client tool, e.g. "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)". */
export async function toolVersion(tool: string): Promise<string> {
  const out = await collect(new ChildStream(clientTool(tool), ['--version'], { label: tool, stdin: false }));
  return out.toString('utf8').trim();
}

/** SQL identifier quoting for names that come from users or catalogs. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
