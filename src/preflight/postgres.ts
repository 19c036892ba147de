/**
 * The PostgreSQL part of `pgark check`: version and the settings WAL archiving depends on.
 * Connection parameters follow libpq (flags over PG* environment variables); the password is
 * never echoed.
 */
import type pg from 'pg';
import type { CheckRow } from './report.js';
import { connectPg, describeConnection, pgConnectionConfig, type PgConnectionOptions } from '../pg/connect.js';

interface Settings {
  version: string;
  server_version_num: string;
  wal_level: string;
  archive_mode: string;
  archive_command: string | null;
}

/** True when the user pointed pgark at a server (flags or PG* variables), rather than relying on libpq defaults. */
function explicitTarget(opts: PgConnectionOptions, env: NodeJS.ProcessEnv): boolean {
  return Boolean(opts.pghost || opts.pgport || opts.pguser || opts.pgdatabase || env.PGHOST || env.PGPORT || env.PGUSER || env.PGDATABASE);
}

/**
 * Rows for PostgreSQL. An unreachable server fails the check only when the user pointed pgark
 * at one; otherwise it is skipped, since the archive can be checked before the database exists.
 */
export async function checkPostgres(
  opts: PgConnectionOptions,
  expectedMajor: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CheckRow[]> {
  let s: Settings;
  let client: pg.Client | undefined;
  let where: string;
  try {
    where = describeConnection(pgConnectionConfig(opts, env));
    client = await connectPg(opts, { env, application_name: 'pgark check' });
    const r = await client.query<Settings>(
      `SELECT version() AS version, current_setting('server_version_num') AS server_version_num,
              current_setting('wal_level') AS wal_level, current_setting('archive_mode') AS archive_mode,
              current_setting('archive_command', true) AS archive_command`,
    );
    s = r.rows[0];
  } catch (err) {
    const e = err as Error & { hint?: string };
    return [
      explicitTarget(opts, env)
        ? { check: 'postgresql', status: 'fail', detail: e.message, hint: e.hint }
        : { check: 'postgresql', status: 'skip', detail: `${e.message} (no connection settings given)` },
    ];
  } finally {
    await client?.end().catch(() => undefined);
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
