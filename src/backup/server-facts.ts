/** The server facts barman records in backup.info, read with ordinary SQL before the copy starts. */
import type pg from 'pg';
import type { ServerFacts, TablespaceFact } from './types.js';
import { UserError } from '../util/errors.js';

async function one<T>(client: pg.Client, sql: string): Promise<T> {
  return (await client.query(sql)).rows[0] as T;
}

export async function readServerFacts(client: pg.Client): Promise<ServerFacts> {
  const v = await one<{ v: string }>(client, `SELECT current_setting('server_version_num') AS v`);
  const version = Number(v.v);
  if (version < 140000) {
    throw new UserError(`PostgreSQL ${Math.floor(version / 10000)} is not supported for base backups`, 'pgark backs up PostgreSQL 14 and newer');
  }
  const settings = await client.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('data_directory','config_file','hba_file','ident_file','wal_segment_size','checkpoint_timeout')`,
  );
  const s = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
  const included = await client.query<{ f: string }>(
    `SELECT DISTINCT sourcefile AS f FROM pg_settings WHERE sourcefile IS NOT NULL AND sourcefile <> current_setting('config_file') ORDER BY 1`,
  );
  const spc = await client.query<{ name: string; oid: number; location: string }>(
    `SELECT spcname AS name, oid::int AS oid, pg_tablespace_location(oid) AS location FROM pg_tablespace
      WHERE pg_tablespace_location(oid) <> '' ORDER BY oid`,
  );
  const misc = await one<{ sysid: string; recovery: boolean; size: string }>(
    client,
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, pg_is_in_recovery() AS recovery,
            (SELECT sum(pg_database_size(oid))::text FROM pg_database) AS size`,
  );
  return {
    version,
    major: Math.floor(version / 10000),
    systemId: misc.sysid,
    pgdata: s.data_directory,
    // wal_segment_size is reported in bytes by pg_settings since PostgreSQL 11.
    walSegmentSize: Number(s.wal_segment_size),
    configFile: s.config_file,
    hbaFile: s.hba_file,
    identFile: s.ident_file,
    includedFiles: included.rows.map((r) => r.f),
    tablespaces: spc.rows.map((r): TablespaceFact => ({ name: r.name, oid: Number(r.oid), location: r.location })),
    inRecovery: misc.recovery,
    clusterSize: Number(misc.size),
    // pg_settings reports it in seconds.
    checkpointTimeoutSeconds: Number(s.checkpoint_timeout),
  };
}
