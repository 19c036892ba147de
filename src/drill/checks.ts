/**
 * The checks a restore drill runs on the promoted server: pg_amcheck over every database (heap and
 * btree) when the server's major has it, a connection to every database that allows them, and the
 * user's SQL probes. Each probe runs read-only and is wrapped so the server does the counting: a
 * probe over a large table never brings its rows here.
 */
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { connectPg } from '../pg/connect.js';
import type { DrillCheck } from '../config/types.js';
import { ROWS_EXPECTATION } from '../config/schema.js';
import type { PgBinaries } from '../pg/binaries.js';
import { runPgTool, type RunAs } from '../pg/local-server.js';
import type { CheckResult } from './report.js';

export interface CheckTarget {
  host: string;
  port: number;
  user: string;
  binaries: PgBinaries;
  who: RunAs | undefined;
  /** The recovery point's time, which maxAgeSeconds measures against (now when unknown). */
  recoveryPointTime?: Date;
}

/** pg_amcheck's output kept in a report: enough to see which relation, not a whole corrupt database's listing. */
const DETAIL_LIMIT = 2000;

function clip(text: string): string {
  const t = text.trim();
  return t.length > DETAIL_LIMIT ? `${t.slice(0, DETAIL_LIMIT)} ...` : t;
}

async function timed(base: Omit<CheckResult, 'status' | 'detail' | 'seconds'>, run: () => Promise<{ ok: boolean | 'skipped'; detail: string }>): Promise<CheckResult> {
  const started = Date.now();
  let outcome: { ok: boolean | 'skipped'; detail: string };
  try {
    outcome = await run();
  } catch (err) {
    outcome = { ok: false, detail: (err as Error).message };
  }
  const status = outcome.ok === 'skipped' ? 'skipped' : outcome.ok ? 'passed' : 'failed';
  return { ...base, status, detail: outcome.detail, seconds: (Date.now() - started) / 1000 };
}

/** A client of the drill's server; the caller's PG* variables (a password meant for the source) stay out. */
export async function withClient<T>(t: Pick<CheckTarget, 'host' | 'port' | 'user'>, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectPg({ pghost: t.host, pgport: String(t.port), pguser: t.user, pgdatabase: database }, { env: {}, connectTimeoutMs: 10_000, application_name: 'pgark drill' });
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function connectable(t: CheckTarget): Promise<{ ok: boolean; detail: string }> {
  const names = await withClient(t, 'postgres', async (c) => (await c.query<{ datname: string }>('SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 1')).rows.map((r) => r.datname));
  const failed: string[] = [];
  for (const db of names) {
    await withClient(t, db, (c) => c.query('SELECT 1')).catch((err: Error) => failed.push(`${db}: ${err.message}`));
  }
  return failed.length ? { ok: false, detail: `cannot connect to ${failed.join('; ')}` } : { ok: true, detail: `${names.length} database(s) accept connections: ${names.join(', ')}` };
}

async function amcheck(t: CheckTarget): Promise<{ ok: boolean | 'skipped'; detail: string }> {
  const tool = t.binaries.path('pg_amcheck');
  if (!existsSync(tool)) return { ok: 'skipped', detail: `pg_amcheck is not installed for PostgreSQL ${t.binaries.major} (${t.binaries.binDir})` };
  // --install-missing adds the amcheck extension to the scratch copy only; heap and btree are pg_amcheck's defaults.
  const r = await runPgTool(tool, ['--all', '--install-missing', '--no-password', '-h', t.host, '-p', String(t.port), '-U', t.user], { who: t.who });
  if (r.code === 0) return { ok: true, detail: 'pg_amcheck --all: heap and btree of every database without corruption' };
  return { ok: false, detail: clip(`pg_amcheck exited ${r.code}: ${r.stdout}\n${r.stderr}`) };
}

/** The probe as a subquery: without a trailing semicolon. */
function subquery(sql: string): string {
  return sql.trim().replace(/;\s*$/, '');
}

function compare(op: string, actual: number, want: number): boolean {
  switch (op) {
    case '>=':
      return actual >= want;
    case '<=':
      return actual <= want;
    case '>':
      return actual > want;
    case '<':
      return actual < want;
    default:
      return actual === want;
  }
}

async function probe(t: CheckTarget, check: DrillCheck): Promise<{ ok: boolean; detail: string }> {
  const inner = subquery(check.sql);
  return withClient(t, check.database, async (c) => {
    await c.query('BEGIN READ ONLY');
    const found: string[] = [];
    let ok = true;
    if (check.expect.rows !== undefined) {
      const [, op = '=', n] = ROWS_EXPECTATION.exec(check.expect.rows)!;
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM (${inner}) AS pgark_probe`);
      const rows = Number(r.rows[0].n);
      const pass = compare(op, rows, Number(n));
      ok &&= pass;
      found.push(`${rows} row(s), expected ${op} ${n}`);
    }
    if (check.expect.nonEmpty) {
      const r = await c.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM (${inner}) AS pgark_probe) AS e`);
      ok &&= r.rows[0].e;
      found.push(r.rows[0].e ? 'returns rows' : 'returns no rows, expected some');
    }
    if (check.expect.maxAgeSeconds !== undefined) {
      const r = await c.query({ text: `SELECT * FROM (${inner}) AS pgark_probe LIMIT 1`, rowMode: 'array' });
      const value: unknown = (r.rows[0] as unknown[] | undefined)?.[0];
      if (!(value instanceof Date)) {
        ok = false;
        found.push(`expected a timestamp in the first column, got ${value === undefined ? 'no row' : value === null ? 'NULL' : typeof value}`);
      } else {
        const against = t.recoveryPointTime ?? new Date();
        const age = (against.getTime() - value.getTime()) / 1000;
        ok &&= age <= check.expect.maxAgeSeconds;
        found.push(`${value.toISOString()} is ${age.toFixed(1)} s before the recovery point${t.recoveryPointTime ? '' : ' (unknown: now)'}, at most ${check.expect.maxAgeSeconds} s expected`);
      }
    }
    await c.query('ROLLBACK');
    return { ok, detail: found.join('; ') };
  });
}

export async function runChecks(t: CheckTarget, checks: DrillCheck[]): Promise<CheckResult[]> {
  const results = [await timed({ name: 'connect', kind: 'connect' }, () => connectable(t)), await timed({ name: 'amcheck', kind: 'amcheck' }, () => amcheck(t))];
  for (const check of checks) {
    results.push(await timed({ name: check.name ?? subquery(check.sql), kind: 'sql', database: check.database }, () => probe(t, check)));
  }
  return results;
}
