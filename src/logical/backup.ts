/**
 * `pgark logical backup`: one database, or the globals plus every connectable non-template database,
 * dumped one after another under one timestamp folder, then age-based retention.
 */
import { openObjectStore } from '../storage/open.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { listDumps } from './catalog.js';
import { dumpToStore, type DumpRequest } from './dump.js';
import { databaseKey, globalsKey, runPrefix, type DumpCodec, type DumpFormat } from './keys.js';
import { describeLocation, resolveLocation, type StorageLocation } from './location.js';
import { connectionError, serverVersion, toolVersion, withClient, type PgConn } from './pgconn.js';
import { expiredKeys, retentionCutoff, type RetentionPeriod } from './retention.js';

export interface LogicalBackupSettings {
  location: StorageLocation;
  credentialSource: string;
  scope: string;
  conn: PgConn;
  /** One database, or undefined for globals + all databases. */
  database?: string;
  format: DumpFormat;
  codec: DumpCodec;
  noOwner: boolean;
  retention?: RetentionPeriod;
  /** The recipients file (--age-recipients): dumps are age-encrypted for its keys. */
  ageRecipientsFile?: string;
}

export interface DumpReport {
  key: string;
  kind: 'database' | 'globals';
  database?: string;
  size: number;
  sha256: string;
  seconds: number;
}

export interface LogicalBackupReport {
  destination: string;
  prefix: string;
  dumps: DumpReport[];
  deleted: string[];
}

/** pg_dump refuses servers newer than itself; say so before anything is written, with the way out. */
function assertDumpCanRead(pgDumpVersion: string, serverVersion: string): void {
  const client = Number(/\)\s+(\d+)/.exec(pgDumpVersion)?.[1]);
  const server = Number(/^(\d+)/.exec(serverVersion)?.[1]);
  if (client < server) {
    throw new UserError(
      `${pgDumpVersion} cannot dump a PostgreSQL ${server} server (pg_dump must be at least as new as the server)`,
      `install postgresql-client-${server} (the Dockerfile: --build-arg PG_MAJOR=${server})`,
    );
  }
}

async function databasesToDump(conn: PgConn): Promise<{ name: string; bytes: number }[]> {
  try {
    return await withClient(conn, conn.database, async (c) =>
      (
        await c.query<{ datname: string; bytes: string }>(
          'SELECT datname, pg_database_size(oid)::text AS bytes FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
        )
      ).rows.map((r) => ({ name: r.datname, bytes: Number(r.bytes) })),
    );
  } catch (err) {
    throw connectionError(conn, conn.database, err);
  }
}

export async function runLogicalBackup(settings: LogicalBackupSettings, now = new Date()): Promise<LogicalBackupReport> {
  const log = logger();
  const { conn, scope } = settings;
  // Loaded only for an encrypted dump: the configuration layer (zod, yaml) is 12 MiB of the job's memory.
  const age = settings.ageRecipientsFile ? await (await import('../config/index.js')).ageKeysFromFiles({ recipients: settings.ageRecipientsFile }, '--age-recipients') : undefined;
  const version = await serverVersion(conn, settings.database ?? conn.database);
  const pgDumpVersion = await toolVersion('pg_dump');
  assertDumpCanRead(pgDumpVersion, version);
  const all = await databasesToDump(conn);
  const targets = settings.database === undefined ? all : all.filter((d) => d.name === settings.database);
  if (settings.database !== undefined && targets.length === 0) {
    // serverVersion() connected to it, so it exists but does not allow connections or is a template.
    targets.push({ name: settings.database, bytes: 0 });
  }
  const store = await openObjectStore(resolveLocation(settings.location, settings.credentialSource));
  const report: LogicalBackupReport = { destination: describeLocation(settings.location), prefix: runPrefix(scope, now), dumps: [], deleted: [] };
  try {
    // Keys have one-second resolution: a second run in the same second would overwrite the first one's dumps.
    const existing = store.list(report.prefix)[Symbol.asyncIterator]();
    const first = await existing.next();
    await existing.return?.();
    if (!first.done) {
      throw new UserError(`a logical backup run already exists at ${report.prefix} in ${store.displayUrl}`, 'start the next run at least a second later');
    }
    const encryption = settings.location.provider === 's3' ? settings.location.sse : undefined;
    const common = { store, format: settings.format, codec: settings.codec, conn, scope, serverVersion: version, pgDumpVersion, noOwner: settings.noOwner, encryption, age };
    const jobs: DumpRequest[] = [
      ...(settings.database === undefined
        ? [{ ...common, kind: 'globals' as const, key: globalsKey(scope, now, settings.codec, age !== undefined), format: 'plain' as const, expectedBytes: 0 }]
        : []),
      ...targets.map((t) => ({ ...common, kind: 'database' as const, database: t.name, key: databaseKey(scope, now, t.name, settings.format, settings.codec, age !== undefined), expectedBytes: t.bytes })),
    ];
    for (const job of jobs) {
      const started = Date.now();
      log.info({ key: job.key, database: job.database }, 'dumping');
      const meta = await dumpToStore(job);
      const seconds = (Date.now() - started) / 1000;
      report.dumps.push({ key: job.key, kind: job.kind, database: job.database, size: meta.size, sha256: meta.sha256, seconds });
      log.info({ key: job.key, bytes: meta.size, seconds }, 'dump stored');
    }
    if (settings.retention) {
      const cutoff = retentionCutoff(settings.retention, now);
      report.deleted = expiredKeys(await listDumps(store, `${scope}/`), cutoff);
      if (report.deleted.length > 0) {
        await store.delete(report.deleted);
        log.info({ count: report.deleted.length, olderThan: cutoff.toISOString() }, 'retention removed old dumps');
      }
    }
    return report;
  } finally {
    await store.close();
  }
}
