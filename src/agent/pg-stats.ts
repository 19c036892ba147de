/**
 * pg_stat_archiver, read at scrape time: PostgreSQL's own count of archived and failed WAL files.
 * It is the authoritative count (it includes segments the WAL daemon stored ahead, which never
 * reach the agent as requests), exported under the names of CNPG's default monitoring queries.
 */
import type { PgConnectionOptions } from '../pg/connect.js';
import { connectPg } from '../pg/connect.js';

export interface ArchiverStats {
  archivedCount: number;
  failedCount: number;
  /** Seconds since the last success / failure; -1 when there was none (CNPG's convention). */
  secondsSinceLastArchival: number;
  secondsSinceLastFailure: number;
  /** Unix seconds; -1 when there was none. */
  lastArchivedTime: number;
  lastFailedTime: number;
}

const QUERY = `SELECT archived_count::float8 AS "archivedCount", failed_count::float8 AS "failedCount",
  COALESCE(EXTRACT(EPOCH FROM (now() - last_archived_time)), -1)::float8 AS "secondsSinceLastArchival",
  COALESCE(EXTRACT(EPOCH FROM (now() - last_failed_time)), -1)::float8 AS "secondsSinceLastFailure",
  COALESCE(EXTRACT(EPOCH FROM last_archived_time), -1)::float8 AS "lastArchivedTime",
  COALESCE(EXTRACT(EPOCH FROM last_failed_time), -1)::float8 AS "lastFailedTime"
  FROM pg_catalog.pg_stat_archiver`;

export async function readArchiverStats(opts: PgConnectionOptions): Promise<ArchiverStats> {
  const client = await connectPg(opts, { application_name: 'pgark_agent', connectTimeoutMs: 5000 });
  try {
    return (await client.query<ArchiverStats>(QUERY)).rows[0];
  } finally {
    await client.end().catch(() => undefined);
  }
}
