/** `pgark backup list | show | delete`: the catalog of one Cluster's object store, for people and for scripts. */
import type { ConfigContext } from '../config/index.js';
import { clusterObjectStore } from '../config/index.js';
import type { Cluster, ResolvedObjectStore } from '../config/types.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectInfo, ObjectStore } from '../storage/types.js';
import { catalogWriteOptions, deleteBackup, findBackup, listBackups, type Catalog } from '../catalog/catalog.js';
import { backupInfoToJson, type BackupInfo, type JsonValue } from '../catalog/backup-info.js';
import { BACKUP_ID_RE } from '../catalog/layout.js';
import { splitCodecSuffix } from '../codec/index.js';
import { formatBytes } from '../util/format.js';

async function withStore<T>(ctx: ConfigContext, cluster: Cluster, fn: (store: ObjectStore, serverName: string, resolved: ResolvedObjectStore) => Promise<T>): Promise<T> {
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

export async function listCommand(ctx: ConfigContext, cluster: Cluster, json: boolean): Promise<void> {
  await withStore(ctx, cluster, async (store, serverName) => {
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

export async function showCommand(ctx: ConfigContext, cluster: Cluster, ref: string, json: boolean): Promise<void> {
  await withStore(ctx, cluster, async (store, serverName) => {
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

export async function deleteCommand(ctx: ConfigContext, cluster: Cluster, ref: string, json: boolean): Promise<void> {
  await withStore(ctx, cluster, async (store, serverName, resolved) => {
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
