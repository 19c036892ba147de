/** Shared pieces of the logical-backup tests: running the CLI, building the dataset, comparing databases. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { PgServer } from '../harness/postgres.js';
import type { S3rver } from '../harness/s3rver.js';

export const REPO = process.cwd();
export const PGARK = join(REPO, 'bin', 'pgark.js');
export const RESTORE_SH = join(REPO, 'bin', 'restore.sh');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion without blocking the event loop (servers may be children of this process). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...env, NODE_NO_WARNINGS: '1', PGARK_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function pgark(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(process.execPath, [PGARK, ...args], env);
}

/** libpq variables of the backup job for a harness server. */
export function pgEnv(pg: PgServer): Record<string, string> {
  return { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'postgres' };
}

/** The restore tool's target database variables for a harness server: the postgres user, no password. */
export function dbEnv(pg: PgServer, name?: string): Record<string, string> {
  return { ...(name === undefined ? {} : { DB_NAME: name }), DB_USER: 'postgres', DB_PASS: '', DB_HOST: pg.host, DB_PORT: String(pg.port) };
}

/** The restore tool's variables naming the s3rver bucket. */
export function s3StoreEnv(s3: S3rver): Record<string, string> {
  return {
    STORAGE_PROVIDER: 's3',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    LOGICAL_BACKUP_S3_BUCKET: s3.bucket,
    LOGICAL_BACKUP_S3_ENDPOINT: s3.endpoint,
    LOGICAL_BACKUP_S3_REGION: s3.region,
  };
}

/** The restore tool's environment, and nothing else of ours, for `backupPath` on s3rver restored into `db` on `target`. */
export function s3RestoreEnv(s3: S3rver, target: PgServer, db: string, backupPath: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, RESTORE_MODE: 'non-interactive', ...s3StoreEnv(s3), BACKUP_FILE_PATH: backupPath, ...dbEnv(target, db) };
}

/**
 * A database with several schemas, quoted and non-ASCII names, large objects, and a wide table of
 * `bigRows` rows (~256 bytes each: 400k rows is about 100 MB on disk).
 */
export async function createDataset(pg: PgServer, db: string, bigRows: number): Promise<void> {
  await pg.query(`CREATE DATABASE ${db}`);
  await pg.query(
    `
    CREATE SCHEMA sales;
    CREATE SCHEMA "Größe";
    CREATE TABLE sales.customers (id int PRIMARY KEY, name text NOT NULL, city text);
    INSERT INTO sales.customers
      SELECT g, (ARRAY['Zoë','Ærøskøbing','Łódź','東京','Dvořák','Ñandú','😀 emoji'])[1 + g % 7] || ' #' || g, 'Straße ' || g
      FROM generate_series(1, 5000) g;
    CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer int REFERENCES sales.customers, amount numeric(12,2), at timestamptz);
    INSERT INTO sales.orders SELECT g, 1 + g % 5000, (g * 7.13) % 1000, '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 20000) g;
    CREATE TABLE "Größe"."Maße" ("Schlüssel" int PRIMARY KEY, "Wert" jsonb, data bytea);
    INSERT INTO "Größe"."Maße" SELECT g, jsonb_build_object('ключ', 'значение ' || g, 'n', g), sha256(g::text::bytea) FROM generate_series(1, 3000) g;
    CREATE TABLE public.big (id bigint PRIMARY KEY, payload text);
    INSERT INTO public.big SELECT g, repeat(md5(g::text), 7) || 'ä' FROM generate_series(1, ${bigRows}) g;
    CREATE VIEW sales.totals AS SELECT customer, sum(amount) FROM sales.orders GROUP BY customer;
    SELECT lo_from_bytea(0, convert_to(repeat('large object ü ' || g, 2000 * g), 'UTF8')) FROM generate_series(1, 5) g;
    `,
    [],
    db,
  );
}

/** Per table: row count and an md5 over the rows ordered by primary key; plus every large object's md5. */
export async function fingerprint(pg: PgServer, db: string): Promise<Record<string, string>> {
  const tables = await pg.query<{ schema: string; name: string; pk: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY array_position(i.indkey::int2[], a.attnum))
               FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
    [],
    db,
  );
  const out: Record<string, string> = {};
  for (const t of tables) {
    const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
    const [row] = await pg.query<{ n: string; sum: string }>(`SELECT count(*) AS n, md5(string_agg(md5(t::text), '' ORDER BY ${t.pk})) AS sum FROM ${rel} t`, [], db);
    out[rel] = `${row.n}:${row.sum}`;
  }
  const los = await pg.query<{ n: string; sum: string }>(
    `SELECT count(*) AS n, md5(string_agg(md5(lo_get(oid)), '' ORDER BY oid)) AS sum FROM pg_largeobject_metadata`,
    [],
    db,
  );
  out['large objects'] = `${los[0].n}:${los[0].sum}`;
  return out;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
