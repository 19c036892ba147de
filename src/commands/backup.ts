/**
 * `pgark backup` (take one) and `pgark backup list | show | delete` (the catalog of one Cluster's
 * object store), for people and for scripts.
 */
import type { ConfigContext } from '../config/index.js';
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import type { Cluster, ResolvedObjectStore } from '../config/types.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectInfo, ObjectStore } from '../storage/types.js';
import { catalogWriteOptions, findBackup, listBackups, type Catalog } from '../catalog/catalog.js';
import { chainOf, deleteWithDependants, isIncremental, listIncrementals, type IncrementalListing } from '../catalog/incremental.js';
import { backupInfoToJson, type BackupInfo, type JsonValue } from '../catalog/backup-info.js';
import { recordToBackupInfo } from '../backup/commit.js';
import type { BackupOverrides } from '../backup/request.js';
import type { BackupResult } from '../backup/run.js';
import { backupMemory } from '../config/memory.js';
import { splitCodecSuffix } from '../codec/types.js';
import { formatBytes } from '../util/format.js';

/** The manifests, secrets and Cluster a backup command acts on. */
export interface ClusterCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  json: boolean;
}

async function clusterOf(opts: ClusterCommandOptions): Promise<{ ctx: ConfigContext; cluster: Cluster }> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  return { ctx, cluster: findCluster(ctx.manifests, opts.cluster) };
}

export async function backupCommand(opts: ClusterCommandOptions & { pg: PgConnectionOptions; overrides: BackupOverrides }): Promise<void> {
  // Loaded here, not with the module: list, show and delete need neither the PostgreSQL client nor
  // the tar writer and codecs that taking a backup loads.
  const [{ backupRequest }, { takeBackupWithin }] = await Promise.all([import('../backup/request.js'), import('../backup/run.js')]);
  const { ctx, cluster } = await clusterOf(opts);
  const req = await backupRequest(ctx, cluster, opts.pg, opts.overrides);
  printBackupResult(await takeBackupWithin(backupMemory(), req), opts.json);
}

async function withStore<T>(opts: ClusterCommandOptions, fn: (store: ObjectStore, serverName: string, resolved: ResolvedObjectStore) => Promise<T>): Promise<T> {
  const { ctx, cluster } = await clusterOf(opts);
  const resolved = await clusterObjectStore(ctx, cluster);
  const store = await openObjectStore(resolved);
  try {
    return await fn(store, resolved.serverName, resolved);
  } finally {
    await store.close();
  }
}

/** What pgark adds to barman's fields: derived from the objects, so it works for barman-cloud's backups too. */
interface Extras {
  sizeBytes: number;
  compression: string;
  durationSeconds: number | null;
  postgresVersion: string | null;
}

function extras(info: BackupInfo, objects: ObjectInfo[]): Extras {
  const dataTar = objects.find((o) => /\/data\.tar(\.[a-z0-9]+)?$/.test(o.key));
  const compression = dataTar ? splitCodecSuffix(dataTar.key).codec : 'unknown';
  const begin = info.begin_time?.toDate?.();
  const end = info.end_time?.toDate?.();
  const v = info.version;
  return {
    sizeBytes: objects.reduce((n, o) => n + o.size, 0),
    compression,
    durationSeconds: begin && end ? (end.getTime() - begin.getTime()) / 1000 : null,
    postgresVersion: v ? `${Math.floor(v / 10000)}.${v % 10000}` : null,
  };
}

/** Full and incremental backups together: what list and show read. */
interface Backups {
  catalog: Catalog;
  incrementals: IncrementalListing;
  /** Fulls and incrementals, oldest first. */
  all: BackupInfo[];
}

async function readBackups(store: ObjectStore, serverName: string): Promise<Backups> {
  const [catalog, incrementals] = await Promise.all([listBackups(store, serverName), listIncrementals(store, serverName)]);
  return { catalog, incrementals, all: [...catalog.backups, ...incrementals.backups].sort((a, b) => a.backup_id.localeCompare(b.backup_id)) };
}

function objectsOf(b: Backups, id: string): ObjectInfo[] {
  return b.catalog.objects.get(id) ?? b.incrementals.objects.get(id) ?? [];
}

/** A backup's chain: its members (full first) and the bytes a restore of it reads; null members when a parent is gone. */
function chainFacts(b: Backups, info: BackupInfo): { members: string[] | null; bytes: number | null } {
  try {
    const members = chainOf(info.backup_id, b.all).map((m) => m.backup_id);
    return { members, bytes: members.reduce((n, id) => n + objectsOf(b, id).reduce((m, o) => m + o.size, 0), 0) };
  } catch {
    return { members: null, bytes: null };
  }
}

function jsonEntry(b: Backups, info: BackupInfo): Record<string, JsonValue> {
  const e = extras(info, objectsOf(b, info.backup_id));
  const chain = chainFacts(b, info);
  return {
    ...backupInfoToJson(info),
    pgark_size_bytes: e.sizeBytes,
    pgark_compression: e.compression,
    pgark_duration_seconds: e.durationSeconds,
    pgark_postgres_version: e.postgresVersion,
    pgark_type: isIncremental(info) ? 'incremental' : 'full',
    pgark_parent_backup_id: info.parent_backup_id || null,
    pgark_chain: chain.members,
    pgark_chain_size_bytes: chain.bytes,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

function isoOrDash(t: { isoformat(): string } | null): string {
  return t ? t.isoformat().slice(0, 19).replace('T', ' ') : '-';
}

function bytesUnder(catalog: Catalog, id: string): number {
  return (catalog.objects.get(id) ?? []).reduce((n, o) => n + o.size, 0);
}

function renderCatalogTable(backups: Backups): string {
  const { catalog } = backups;
  const rows = [['ID', 'NAME', 'STATUS', 'TYPE', 'PARENT', 'BEGIN TIME', 'END TIME', 'BEGIN WAL', 'END WAL', 'SIZE', 'CHAIN SIZE', 'COMPRESSION', 'DURATION', 'PG']];
  const dashes = (n: number) => Array<string>(n).fill('-');
  for (const b of backups.all) {
    const e = extras(b, objectsOf(backups, b.backup_id));
    const chain = chainFacts(backups, b);
    rows.push([
      b.backup_id,
      b.backup_name ?? '-',
      b.status,
      isIncremental(b) ? 'incremental' : 'full',
      b.parent_backup_id || '-',
      isoOrDash(b.begin_time),
      isoOrDash(b.end_time),
      b.begin_wal ?? '-',
      b.end_wal ?? '-',
      formatBytes(e.sizeBytes),
      chain.bytes === null ? 'BROKEN' : formatBytes(chain.bytes),
      e.compression,
      e.durationSeconds === null ? '-' : `${e.durationSeconds.toFixed(1)}s`,
      e.postgresVersion ?? '-',
    ]);
  }
  for (const { backupId } of catalog.running) rows.push([backupId, '-', 'STARTED', '-', '-', ...dashes(4), formatBytes(bytesUnder(catalog, backupId)), ...dashes(4)]);
  for (const id of catalog.incomplete) rows.push([id, '-', 'INCOMPLETE', '-', '-', ...dashes(4), formatBytes(bytesUnder(catalog, id)), ...dashes(4)]);
  for (const u of [...catalog.unreadable, ...backups.incrementals.unreadable]) rows.push([u.backupId, '-', 'UNREADABLE', '-', '-', ...dashes(9)]);
  return table(rows);
}

export async function listCommand(opts: ClusterCommandOptions): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName) => {
    const backups = await readBackups(store, serverName);
    const { catalog } = backups;
    if (json) {
      const out = {
        backups_list: catalog.backups.map((b) => jsonEntry(backups, b)),
        // Beside backups_list, as barman-cloud-backup-list (and so CNPG) never sees an incremental.
        pgark_incrementals: backups.incrementals.backups.map((b) => jsonEntry(backups, b)),
        pgark_incomplete: catalog.incomplete,
        // Outside backups_list: barman-cloud-backup-list never shows a backup before its backup.info exists, and CNPG parses every element of that list.
        pgark_running: catalog.running.map(({ backupId, claim }) => ({
          backup_id: backupId,
          status: 'STARTED',
          host: claim.host ?? null,
          pid: claim.pid ?? null,
          last_heartbeat_iso: claim.refreshedAt?.toISOString() ?? null,
          pgark_size_bytes: bytesUnder(catalog, backupId),
        })),
        pgark_unreadable: [...catalog.unreadable, ...backups.incrementals.unreadable].map((u) => ({ backup_id: u.backupId, error: u.error })),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    if (backups.all.length + catalog.running.length + catalog.incomplete.length + catalog.unreadable.length + backups.incrementals.unreadable.length === 0) {
      process.stdout.write(`no backups for server "${serverName}" in ${store.displayUrl}\n`);
      return;
    }
    process.stdout.write(renderCatalogTable(backups));
    if (backups.incrementals.backups.length) {
      process.stdout.write(`\nincremental: stores the files changed since PARENT; a restore reads its whole chain (CHAIN SIZE). pgark-only: barman-cloud lists the full backups only\n`);
    }
    if (catalog.running.length) process.stdout.write(`\nSTARTED: a backup still running (its claim is refreshed); it cannot be deleted until it ends\n`);
    if (catalog.incomplete.length) {
      process.stdout.write(`\nINCOMPLETE: objects without backup.info (an interrupted backup); remove with "pgark backup delete ID"\n`);
    }
  });
}

export async function showCommand(opts: ClusterCommandOptions, ref: string): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName) => {
    const backups = await readBackups(store, serverName);
    const info = findBackup({ serverName, backups: backups.all }, ref);
    const entry = jsonEntry(backups, info);
    if (json) {
      // barman-cloud-backup-show keys the object by the backup's server_name ("cloud"), which CNPG reads.
      process.stdout.write(`${JSON.stringify({ [info.server_name ?? 'cloud']: entry }, null, 2)}\n`);
      return;
    }
    const width = Math.max(...Object.keys(entry).map((k) => k.length));
    for (const [k, v] of Object.entries(entry)) {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      process.stdout.write(`${k.padEnd(width)}  ${text}\n`);
    }
  });
}

/**
 * Deletes one backup. A backup that a DONE incremental needs is refused unless `cascade`, which
 * deletes those incrementals first, newest first, so an interruption leaves no incremental
 * without its parent.
 */
export async function deleteCommand(opts: ClusterCommandOptions & { cascade?: boolean }, ref: string): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName, resolved) => {
    const results = await deleteWithDependants(store, serverName, ref, { cascade: Boolean(opts.cascade), write: catalogWriteOptions(resolved.config) });
    for (const r of results) {
      process.stdout.write(
        json
          ? `${JSON.stringify({ backup_id: r.backupId, objects_deleted: r.objectsDeleted, bytes_freed: r.bytesFreed })}\n`
          : `deleted backup ${r.backupId}: ${r.objectsDeleted} objects, ${formatBytes(r.bytesFreed)}\n`,
      );
    }
  });
}

export function printBackupResult(result: BackupResult, json: boolean): void {
  const r = result.record;
  const seconds = r.endTime ? (r.endTime.getTime() - r.beginTime.getTime()) / 1000 : null;
  if (json) {
    const out = {
      ...backupInfoToJson(recordToBackupInfo(r)),
      pgark_method: result.method,
      pgark_from: result.from,
      pgark_compression: r.compression,
      pgark_stored_bytes: r.storedBytes ?? null,
      pgark_destination: result.displayUrl,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const name = r.backupName ? ` (${r.backupName})` : '';
  process.stdout.write(
    `backup ${r.backupId}${name} ${r.status}: ${formatBytes(r.storedBytes ?? 0)} stored (${r.compression}) in ${result.displayUrl}` +
      `${seconds !== null ? `, ${seconds.toFixed(1)}s between start and stop` : ''}; WAL ${r.beginWal} .. ${r.endWal} (${result.method}, from the ${result.from})\n`,
  );
}
