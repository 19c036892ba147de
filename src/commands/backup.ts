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
import { catalogWriteOptions, deleteBackup, findBackup, listBackups, type Catalog } from '../catalog/catalog.js';
import { backupInfoToJson, type BackupInfo, type JsonValue } from '../catalog/backup-info.js';
import { BACKUP_ID_RE } from '../catalog/layout.js';
import { recordToBackupInfo } from '../backup/commit.js';
import { backupRequest, type BackupOverrides } from '../backup/request.js';
import { takeBackup, type BackupResult } from '../backup/run.js';
import { splitCodecSuffix } from '../codec/index.js';
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
  const { ctx, cluster } = await clusterOf(opts);
  const req = await backupRequest(ctx, cluster, opts.pg, opts.overrides);
  printBackupResult(await takeBackup(req), opts.json);
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

function jsonEntry(info: BackupInfo, objects: ObjectInfo[]): Record<string, JsonValue> {
  const e = extras(info, objects);
  return {
    ...backupInfoToJson(info),
    pgark_size_bytes: e.sizeBytes,
    pgark_compression: e.compression,
    pgark_duration_seconds: e.durationSeconds,
    pgark_postgres_version: e.postgresVersion,
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

export function renderCatalogTable(catalog: Catalog): string {
  const rows = [['ID', 'NAME', 'STATUS', 'BEGIN TIME', 'END TIME', 'BEGIN WAL', 'END WAL', 'SIZE', 'COMPRESSION', 'DURATION', 'PG']];
  for (const b of catalog.backups) {
    const e = extras(b, catalog.objects.get(b.backup_id) ?? []);
    rows.push([
      b.backup_id,
      b.backup_name ?? '-',
      b.status,
      isoOrDash(b.begin_time),
      isoOrDash(b.end_time),
      b.begin_wal ?? '-',
      b.end_wal ?? '-',
      formatBytes(e.sizeBytes),
      e.compression,
      e.durationSeconds === null ? '-' : `${e.durationSeconds.toFixed(1)}s`,
      e.postgresVersion ?? '-',
    ]);
  }
  for (const { backupId } of catalog.running) rows.push([backupId, '-', 'STARTED', '-', '-', '-', '-', formatBytes(bytesUnder(catalog, backupId)), '-', '-', '-']);
  for (const id of catalog.incomplete) {
    rows.push([id, '-', 'INCOMPLETE', '-', '-', '-', '-', formatBytes(bytesUnder(catalog, id)), '-', '-', '-']);
  }
  for (const u of catalog.unreadable) rows.push([u.backupId, '-', 'UNREADABLE', '-', '-', '-', '-', '-', '-', '-', '-']);
  return table(rows);
}

export async function listCommand(opts: ClusterCommandOptions): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName) => {
    const catalog = await listBackups(store, serverName);
    if (json) {
      const out = {
        backups_list: catalog.backups.map((b) => jsonEntry(b, catalog.objects.get(b.backup_id) ?? [])),
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
        pgark_unreadable: catalog.unreadable.map((u) => ({ backup_id: u.backupId, error: u.error })),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    if (catalog.backups.length + catalog.running.length + catalog.incomplete.length + catalog.unreadable.length === 0) {
      process.stdout.write(`no backups for server "${serverName}" in ${store.displayUrl}\n`);
      return;
    }
    process.stdout.write(renderCatalogTable(catalog));
    if (catalog.running.length) process.stdout.write(`\nSTARTED: a backup still running (its claim is refreshed); it cannot be deleted until it ends\n`);
    if (catalog.incomplete.length) {
      process.stdout.write(`\nINCOMPLETE: objects without backup.info (an interrupted backup); remove with "pgark backup delete ID"\n`);
    }
  });
}

export async function showCommand(opts: ClusterCommandOptions, ref: string): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName) => {
    const catalog = await listBackups(store, serverName);
    const info = findBackup(catalog, ref);
    const entry = jsonEntry(info, catalog.objects.get(info.backup_id) ?? []);
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

export async function deleteCommand(opts: ClusterCommandOptions, ref: string): Promise<void> {
  const { json } = opts;
  await withStore(opts, async (store, serverName, resolved) => {
    const catalog = await listBackups(store, serverName);
    const bare =
      BACKUP_ID_RE.test(ref) && (catalog.incomplete.includes(ref) || catalog.running.some((r) => r.backupId === ref) || catalog.unreadable.some((u) => u.backupId === ref));
    const info = bare ? undefined : findBackup(catalog, ref);
    const result = await deleteBackup(store, serverName, info?.backup_id ?? ref, { info, write: catalogWriteOptions(resolved.config) });
    if (json) {
      process.stdout.write(`${JSON.stringify({ backup_id: result.backupId, objects_deleted: result.objectsDeleted, bytes_freed: result.bytesFreed })}\n`);
      return;
    }
    process.stdout.write(`deleted backup ${result.backupId}: ${result.objectsDeleted} objects, ${formatBytes(result.bytesFreed)}\n`);
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
