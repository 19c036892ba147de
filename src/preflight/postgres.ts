/**
 * The PostgreSQL part of `pgark check`: version and the settings WAL archiving depends on.
 * Connection parameters follow libpq (flags over PG* environment variables); the password is
 * never echoed.
 */
import pg from 'pg';
import type { CheckRow } from './check.js';

export interface PgTarget {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  database?: string;
}

/** libpq conventions: explicit flags, then PG* variables, then libpq's defaults. */
export function pgTargetFrom(flags: PgTarget, env: NodeJS.ProcessEnv = process.env): PgTarget & { explicit: boolean } {
  const t: PgTarget = {
    host: flags.host ?? env.PGHOST,
    port: flags.port ?? env.PGPORT,
    user: flags.user ?? env.PGUSER,
    password: flags.password ?? env.PGPASSWORD,
    database: flags.database ?? env.PGDATABASE,
  };
  return { ...t, explicit: Boolean(t.host || t.port || t.user || t.database) };
}

interface Settings {
  version: string;
  server_version_num: string;
  wal_level: string;
  archive_mode: string;
  archive_command: string | null;
}

/**
 * Rows for PostgreSQL. An unreachable server fails the check only when the user pointed pgark
 * at one (flags or PG* variables); otherwise it is skipped, since archiving config can be
 * checked before the database exists.
 */
export async function checkPostgres(target: PgTarget & { explicit?: boolean }, expectedMajor: number | undefined): Promise<CheckRow[]> {
  const client = new pg.Client({
    host: target.host,
    port: target.port ? Number(target.port) : undefined,
    user: target.user,
    password: target.password,
    database: target.database ?? 'postgres',
    connectionTimeoutMillis: 5000,
  });
  const where = `${target.host ?? 'default socket'}:${target.port ?? 5432}`;
  let s: Settings;
  try {
    await client.connect();
    const r = await client.query<Settings>(
      `SELECT version() AS version, current_setting('server_version_num') AS server_version_num,
              current_setting('wal_level') AS wal_level, current_setting('archive_mode') AS archive_mode,
              current_setting('archive_command', true) AS archive_command`,
    );
    s = r.rows[0];
  } catch (err) {
    const detail = `cannot connect to ${where}: ${(err as Error).message}`;
    return [
      target.explicit
        ? { check: 'postgresql', status: 'fail', detail, hint: 'check --pghost/--pgport/--pguser (or PGHOST, PGPORT, PGUSER, PGPASSWORD)' }
        : { check: 'postgresql', status: 'skip', detail: `${detail} (no connection settings given)` },
    ];
  } finally {
    await client.end().catch(() => undefined);
  }
  const major = Math.floor(Number(s.server_version_num) / 10000);
  const rows: CheckRow[] = [];
  const versionMatches = expectedMajor === undefined || expectedMajor === major;
  rows.push({
    check: 'postgresql',
    status: versionMatches ? 'ok' : 'warn',
    detail: `${s.version.split(' on ')[0]} at ${where}${versionMatches ? '' : `; imageName says PostgreSQL ${expectedMajor}`}`,
  });
  rows.push(
    s.wal_level === 'minimal'
      ? { check: 'wal_level', status: 'fail', detail: 'minimal: WAL cannot be archived', hint: 'set wal_level = replica and restart' }
      : { check: 'wal_level', status: 'ok', detail: s.wal_level },
  );
  rows.push(
    s.archive_mode === 'off'
      ? { check: 'archive_mode', status: 'warn', detail: 'off: no WAL is archived', hint: 'set archive_mode = on and restart' }
      : { check: 'archive_mode', status: 'ok', detail: s.archive_mode },
  );
  const cmd = s.archive_command;
  // Only the program is printed: people embed credentials in archive_command lines.
  const program = cmd?.trim().split(/\s+/)[0] ?? '';
  rows.push(
    cmd === null
      ? { check: 'archive_command', status: 'warn', detail: 'not readable by this user', hint: 'connect as a superuser or a member of pg_read_all_settings' }
      : /\bpgark\b.*\bwal-archive\b/.test(cmd)
        ? { check: 'archive_command', status: 'ok', detail: 'pgark wal-archive' }
        : {
            check: 'archive_command',
            status: 'warn',
            detail: cmd ? `runs ${program}, not pgark wal-archive` : 'empty',
            hint: "set archive_command = 'pgark wal-archive -f <manifest> %p'",
          },
  );
  return rows;
}
