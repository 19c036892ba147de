/**
 * Connecting to PostgreSQL with libpq's conventions: explicit flags win over PGHOST, PGPORT,
 * PGUSER, PGPASSWORD and PGDATABASE; a host starting with "/" is a Unix-socket directory.
 * Defaults: host = libpq's Debian socket directory /var/run/postgresql when it exists, else
 * localhost; port 5432; user = the OS user; database = "postgres" (what the CLI documents and
 * what barman-cloud uses, rather than libpq's user-named database).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import type pg from 'pg';
import { PgarkError, UserError } from '../util/errors.js';
import { lazyRequire } from '../util/lazy-require.js';
import { flagNames, OPTIONS } from '../util/options.js';
import { timelineOfWalName } from './wal-names.js';

/** libpq-style connection flags as the user gave them; unset fields fall back to the PG* variables. */
export interface PgConnectionOptions {
  pghost?: string;
  pgport?: string;
  pguser?: string;
  pgpassword?: string;
  pgdatabase?: string;
  pgdata?: string;
}

const DEBIAN_SOCKET_DIR = '/var/run/postgresql';

/**
 * node-postgres, loaded by the first connection: a restore that starts no server, or one before it
 * does, has no use for it (`pgark restore --dry-run`: 0.22-0.23 CPU s against 0.25-0.26 with it
 * loaded up front, 20 runs each; `require('pg')` alone costs 0.07 s).
 */
const pgModule = lazyRequire<typeof pg>('pg');

export interface PgConnectionConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

function parsePort(text: string, from: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) throw new UserError(`${from}: "${text}" is not a valid port (expected 1-65535)`);
  return port;
}

type ConnectionFlag = 'pghost' | 'pgport' | 'pguser' | 'pgpassword' | 'pgdatabase';

/** The flag, else its variable: both named by the option table, which --help and docs/options.md show. */
function pick(name: ConnectionFlag, opts: PgConnectionOptions, env: NodeJS.ProcessEnv): { value: string; from: string } | undefined {
  const flag = opts[name];
  if (flag !== undefined && flag !== '') return { value: flag, from: flagNames(OPTIONS[name]).long };
  const envName = OPTIONS[name].env;
  const v = env[envName];
  if (v !== undefined && v !== '') return { value: v, from: envName };
  return undefined;
}

/** Resolves connection settings from flags, then the environment, then libpq-like defaults. */
export function pgConnectionConfig(opts: PgConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): PgConnectionConfig {
  const host = pick('pghost', opts, env)?.value ?? (existsSync(DEBIAN_SOCKET_DIR) ? DEBIAN_SOCKET_DIR : 'localhost');
  const port = pick('pgport', opts, env);
  const config: PgConnectionConfig = {
    host,
    port: port ? parsePort(port.value, port.from) : 5432,
    user: pick('pguser', opts, env)?.value ?? os.userInfo().username,
    database: pick('pgdatabase', opts, env)?.value ?? 'postgres',
  };
  const password = pick('pgpassword', opts, env)?.value;
  if (password !== undefined) config.password = password;
  return config;
}

/** Where a connection goes, for messages: never includes the password. */
export function describeConnection(c: PgConnectionConfig): string {
  const where = c.host.startsWith('/') ? `socket ${c.host}/.s.PGSQL.${c.port}` : `${c.host}:${c.port}`;
  return `${where} as ${c.user}, database ${c.database}`;
}

export interface ConnectOptions {
  /** 'database' = logical replication connection (can also run SQL); true = physical. */
  replication?: 'database' | true;
  application_name?: string;
  env?: NodeJS.ProcessEnv;
  /** Give up connecting after this long (default: no limit, as libpq). */
  connectTimeoutMs?: number;
}

/** Opens a connected pg.Client; failures become a PgarkError naming the target (not the password). */
export async function connectPg(opts: PgConnectionOptions = {}, connect: ConnectOptions = {}): Promise<pg.Client> {
  const config = pgConnectionConfig(opts, connect.env);
  // node-postgres supports the replication startup parameter but its types do not declare it.
  const clientConfig: pg.ClientConfig & { replication?: string | boolean } = { ...config, application_name: connect.application_name ?? 'pgark' };
  if (connect.replication !== undefined) clientConfig.replication = connect.replication;
  if (connect.connectTimeoutMs !== undefined) clientConfig.connectionTimeoutMillis = connect.connectTimeoutMs;
  const client = new (pgModule().Client)(clientConfig);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const message = (err as Error).message.split(config.password ?? '\0').join('***');
    throw new PgarkError(`cannot connect to PostgreSQL at ${describeConnection(config)}: ${message}`, 1, 'check --pghost/--pgport/--pguser (or PGHOST, PGPORT, PGUSER) and that the server is running');
  }
  return client;
}

export interface ServerInfo {
  /** server_version_num, e.g. 150010. */
  versionNum: number;
  major: number;
  walLevel: string;
  archiveMode: string;
  archiveCommand: string;
  /** Undefined when the role may not read data_directory (needs superuser or pg_read_all_settings). */
  dataDirectory?: string;
  systemIdentifier: string;
  walSegmentSize: number;
  inRecovery: boolean;
  /** Current timeline: from the insert position on a primary, from the last checkpoint on a standby. */
  timeline: number;
}

/**
 * The timeline the server is on, as SQL: a primary's from its current WAL file, a standby's from its
 * last checkpoint. A primary's last checkpoint is not enough: after a fast promotion (pg_ctl
 * promote) it stays on the old timeline until the checkpoint that follows in the background.
 */
export const CURRENT_TIMELINE_SQL =
  "CASE WHEN pg_catalog.pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()) ELSE ('x' || substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

/** Facts about the connected server that backup and archiving decisions depend on. */
export async function serverInfo(client: pg.Client): Promise<ServerInfo> {
  const settings = await client.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('server_version_num', 'wal_level', 'archive_mode', 'archive_command', 'data_directory', 'wal_segment_size')`,
  );
  const s = new Map(settings.rows.map((r) => [r.name, r.setting]));
  const facts = await client.query<{ system_identifier: string; in_recovery: boolean; walfile: string | null; checkpoint_tli: number }>(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
            pg_is_in_recovery() AS in_recovery,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
            (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli`,
  );
  const f = facts.rows[0]!;
  const versionNum = Number(s.get('server_version_num'));
  const info: ServerInfo = {
    versionNum,
    major: Math.floor(versionNum / 10000),
    walLevel: s.get('wal_level') ?? '',
    archiveMode: s.get('archive_mode') ?? '',
    archiveCommand: s.get('archive_command') ?? '',
    systemIdentifier: f.system_identifier,
    walSegmentSize: Number(s.get('wal_segment_size')),
    inRecovery: f.in_recovery,
    timeline: f.walfile ? timelineOfWalName(f.walfile) : Number(f.checkpoint_tli),
  };
  const dataDirectory = s.get('data_directory');
  if (dataDirectory) info.dataDirectory = dataDirectory;
  return info;
}
