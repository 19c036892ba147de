/**
 * Restoring one logical dump: resolve the object (or "latest"), inspect the target database, then stream
 * download -> SHA-256 check -> decompress -> psql / pg_restore.
 *
 * Plain SQL runs as `psql -v ON_ERROR_STOP=1 --single-transaction -f -`: the first error stops it and
 * nothing is committed. The checksum is compared when the download ends, before psql's stdin is closed;
 * on a mismatch psql is killed, so the transaction never commits (closing stdin would commit it).
 *
 * Custom format with jobs > 1 uses `pg_restore -j N`, which needs a seekable file: the dump is downloaded
 * (and verified) into a temporary file first, costing disk space equal to the dump size but nothing is
 * written to the database before the checksum is known good. With jobs = 1 it streams into
 * `pg_restore --single-transaction --exit-on-error` like plain SQL, with no temporary file.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import { decodeStreams, type AgeKeys } from '../codec/index.js';
import { ChildStream } from '../io/child.js';
import { count } from '../io/count.js';
import { cryptoHasher, hash } from '../io/hash.js';
import type { ProgressDisplay } from '../io/progress.js';
import { clientTool } from '../pg/binaries.js';
import type { ObjectStore } from '../storage/types.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { youngCollector } from '../util/gc.js';
import { listDumps, pickLatest } from './catalog.js';
import { formatOfName, metaKey, parseDumpKey, type DumpCodec, type DumpFormat } from './keys.js';
import { readMeta, type DumpMeta } from './meta.js';
import { connectionError, describeConn, quoteIdent, toolEnv, withClient, type PgConn } from './pgconn.js';
import { decompressor, SCAVENGE_EVERY } from './streams.js';

export interface ResolvedBackup {
  key: string;
  format: DumpFormat;
  codec: DumpCodec;
  encrypted: boolean;
  size: number;
  /** Absent for dumps written without a sidecar (e.g. by the postgres-operator job): no checksum to verify. */
  meta?: DumpMeta;
  /** A postgres-operator pg_dumpall: it creates and connects to databases, which cannot run in one transaction. */
  clusterWide: boolean;
}

export class ChecksumError extends PgarkError {}

/** The object a backup path names; "latest" picks the newest complete dump (of `database` when there is one). */
export async function resolveBackup(store: ObjectStore, path: string, database: string | undefined): Promise<ResolvedBackup> {
  const key = path === 'latest' ? pickLatest(await listDumps(store), database, store.displayUrl).key : path.replace(/^\/+/, '');
  const kind = formatOfName(key);
  if (!kind) {
    throw new UserError(`backup "${key}" is not a logical dump name`, 'expected a key ending in .sql.gz, .sql.zst, .sql or .dump, optionally followed by .age (see `pgark logical list`)');
  }
  const info = await store.head(key);
  if (!info) {
    throw new NotFoundError(`backup "${key}" not found in ${store.displayUrl}; run \`pgark logical list\` to see the dumps, or use "latest"`);
  }
  const meta = await readMeta(store, metaKey(key));
  const parsed = parseDumpKey(key);
  const clusterWide = !meta && parsed !== undefined && parsed.kind === 'database' && parsed.database === undefined && parsed.format === 'plain';
  return { key, ...kind, size: info.size, meta, clusterWide };
}

export interface TargetState {
  exists: boolean;
  /** Tables, views, sequences... outside the system schemas, plus large objects. */
  objects: number;
}

const USER_OBJECTS_SQL = `
  SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
            AND n.nspname NOT LIKE 'pg_temp%')
       + (SELECT count(*) FROM pg_largeobject_metadata) AS n`;

/** Connects to the target (or, when it does not exist, to the maintenance database) and looks inside. */
export async function inspectTarget(conn: PgConn): Promise<TargetState> {
  try {
    const objects = await withClient(conn, conn.database, async (c) => Number((await c.query<{ n: string }>(USER_OBJECTS_SQL)).rows[0].n));
    return { exists: true, objects };
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw connectionError(conn, conn.database, err);
  }
  try {
    await withClient(conn, 'postgres', async (c) => c.query('SELECT 1'));
  } catch (err) {
    throw connectionError(conn, 'postgres', err);
  }
  return { exists: false, objects: 0 };
}

export async function createDatabase(conn: PgConn): Promise<void> {
  try {
    await withClient(conn, 'postgres', async (c) => c.query(`CREATE DATABASE ${quoteIdent(conn.database)}`));
  } catch (err) {
    throw new UserError(`cannot create ${describeConn(conn)}: ${(err as Error).message}`, 'create it yourself, or use a user with CREATEDB');
  }
}

/** Size and SHA-256 check against the sidecar, run when the download ends and before the consumer sees EOF. */
function verifier(backup: ResolvedBackup): (bytes: number, sha256: string) => Error | undefined {
  return (bytes, sha256) => {
    const meta = backup.meta;
    if (!meta || (meta.sha256 === sha256 && meta.size === bytes)) return undefined;
    return new ChecksumError(
      `backup "${backup.key}" is corrupt: expected ${meta.size} bytes with SHA-256 ${meta.sha256}, downloaded ${bytes} bytes with SHA-256 ${sha256}; nothing was committed`,
    );
  };
}

export interface RestoreResult {
  key: string;
  database: string;
  bytes: number;
  sha256: string;
  verified: boolean;
  seconds: number;
}

/** libpq conninfo naming only the database; host, user and password come from the environment. */
function dbnameConninfo(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function executeRestore(
  store: ObjectStore,
  backup: ResolvedBackup,
  conn: PgConn,
  opts: { jobs: number; progress?: ProgressDisplay; age?: AgeKeys },
): Promise<RestoreResult> {
  // Decryption comes after the checksum (the sidecar hashes the stored bytes) and before decompression.
  const decrypt = (): Transform[] => (backup.encrypted ? decodeStreams({ codec: 'none', encrypted: true }, opts.age, backup.key) : []);
  const started = Date.now();
  // The download's chunks die young; a scavenge every few MiB frees them before they pile up.
  const collect = youngCollector(SCAVENGE_EVERY);
  const counter = count((n) => {
    opts.progress?.add(n);
    collect(n);
  });
  const digest = hash(cryptoHasher('sha256'), { check: (sha256) => verifier(backup)(counter.bytes, sha256) });
  const env = toolEnv(conn);
  const parallel = backup.format === 'custom' && opts.jobs > 1;
  if (parallel) {
    const dir = await mkdtemp(join(tmpdir(), 'pgark-restore-'));
    try {
      const file = join(dir, 'dump');
      await pipeline([await store.get(backup.key), counter, digest, ...decrypt(), createWriteStream(file)]);
      opts.progress?.stop();
      const tool = new ChildStream(clientTool('pg_restore'), ['--no-password', '--exit-on-error', `--jobs=${opts.jobs}`, `--dbname=${dbnameConninfo(conn.database)}`, file], {
        label: 'pg_restore',
        env,
        stdin: false,
        stdout: false,
      });
      await tool.success();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } else {
    const tool =
      backup.format === 'custom'
        ? new ChildStream(clientTool('pg_restore'), ['--no-password', '--exit-on-error', '--single-transaction', `--dbname=${dbnameConninfo(conn.database)}`], { label: 'pg_restore', env, stdout: false })
        : new ChildStream(clientTool('psql'), ['--no-password', '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...(backup.clusterWide ? [] : ['--single-transaction']), '-f', '-'], {
            label: 'psql',
            env,
            stdout: false,
          });
    const unzip = decompressor(backup.codec);
    try {
      await pipeline([await store.get(backup.key), counter, digest, ...decrypt(), ...(unzip ? [unzip] : []), tool]);
    } finally {
      tool.kill();
      opts.progress?.stop();
    }
  }
  return {
    key: backup.key,
    database: conn.database,
    bytes: counter.bytes,
    sha256: digest.digest,
    verified: backup.meta !== undefined,
    seconds: (Date.now() - started) / 1000,
  };
}
