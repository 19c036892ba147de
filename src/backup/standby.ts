/**
 * Which server a backup reads, as CNPG's Backup spec.target says: `prefer-standby` reads a
 * streaming standby of the same system when one is given (--standby-host/--standby-port or the
 * Cluster's pgark.io/backup-standby annotation), else the primary; `primary` always reads the
 * primary. When a standby is read, pg_backup_start/stop (or BASE_BACKUP) run on the standby, as
 * PostgreSQL requires, and only the WAL switch, the restore point and the archiver's state come
 * from the primary, which archives the standby's end segment.
 */
import type pg from 'pg';
import { connectPg, type PgConnectionOptions } from '../pg/connect.js';
import type { Cluster } from '../config/types.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { readServerFacts } from './server-facts.js';
import type { ServerFacts } from './types.js';

export type BackupTarget = 'primary' | 'prefer-standby';

export const STANDBY_ANNOTATION = 'pgark.io/backup-standby';

export interface BackupServers {
  /** The session on the server whose files are copied. */
  sql: pg.Client;
  facts: ServerFacts;
  /** How to reach that server (a replication connection for BASE_BACKUP uses it too). */
  pg: PgConnectionOptions;
  /** The primary's session when a standby is read: WAL switch, restore point, archiver state. */
  primary?: pg.Client;
  from: 'primary' | 'standby';
  /** Why prefer-standby read the primary. */
  fallback?: string;
}

/** The standby named by the Cluster's annotation ("host" or "host:port"), undefined when there is none. */
export function standbyFromCluster(cluster: Cluster): { pghost: string; pgport?: string } | undefined {
  const value = cluster.metadata.annotations?.[STANDBY_ANNOTATION];
  if (value === undefined) return undefined;
  const m = /^([^\s:]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) {
    throw new UserError(`Cluster "${cluster.metadata.name}" annotation ${STANDBY_ANNOTATION}: "${value}" is not host or host:port`, 'e.g. pgark.io/backup-standby: "pg-2.pg:5432"');
  }
  return { pghost: m[1], pgport: m[2] };
}

async function open(options: PgConnectionOptions, applicationName: string): Promise<pg.Client> {
  const client = await connectPg(options, { application_name: applicationName });
  client.on('error', () => undefined);
  return client;
}

/** Why `standby` cannot serve a backup of the system `systemId`; undefined when it can. */
async function unusableStandby(standby: pg.Client, facts: ServerFacts, systemId: string): Promise<string | undefined> {
  if (!facts.inRecovery) return 'it is not in recovery (not a standby)';
  if (facts.systemId !== systemId) return `its system identifier ${facts.systemId} is not the primary's ${systemId}`;
  const r = await standby.query<{ status: string }>('SELECT status FROM pg_stat_wal_receiver');
  const status = r.rows[0]?.status;
  return status === 'streaming' ? undefined : `it is not streaming from a primary (WAL receiver ${status ?? 'not running'})`;
}

/**
 * Connects to the server the backup reads and, for a standby, to the primary too. `primaryOptions`
 * may itself name a standby (the pre-existing way to back up a standby, with no primary session:
 * then only the WAL wait's timeout applies).
 */
export async function connectBackupServers(
  primaryOptions: PgConnectionOptions,
  standby: PgConnectionOptions | undefined,
  target: BackupTarget,
  applicationName: string,
): Promise<BackupServers> {
  const primary = await open(primaryOptions, applicationName);
  try {
    const primaryFacts = await readServerFacts(primary);
    if (target === 'primary' || !standby || primaryFacts.inRecovery) {
      return { sql: primary, facts: primaryFacts, pg: primaryOptions, from: primaryFacts.inRecovery ? 'standby' : 'primary' };
    }
    const standbyOptions: PgConnectionOptions = { ...primaryOptions, ...standby };
    let fallback: string;
    try {
      const client = await open(standbyOptions, applicationName);
      try {
        const facts = await readServerFacts(client);
        const why = await unusableStandby(client, facts, primaryFacts.systemId);
        if (!why) return { sql: client, facts, pg: standbyOptions, primary, from: 'standby' };
        fallback = why;
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      await client.end().catch(() => undefined);
    } catch (err) {
      fallback = `cannot use it: ${(err as Error).message.split('\n')[0]}`;
    }
    fallback = `standby ${standbyOptions.pghost ?? ''}:${standbyOptions.pgport ?? ''} not used (${fallback}); backing up the primary`;
    logger().warn({ event: 'backup-standby-fallback' }, fallback);
    return { sql: primary, facts: primaryFacts, pg: primaryOptions, from: 'primary', fallback };
  } catch (err) {
    await primary.end().catch(() => undefined);
    throw err;
  }
}
