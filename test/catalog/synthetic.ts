/**
 * Synthetic catalogs for retention and catalog tests: small fake tars, a real backup.info
 * (our serializer, barman 3.4's format) and WAL objects, written through an ObjectStore.
 */
import { emptyBackupInfo, serializeBackupInfo, type BackupInfo, type BackupStatus } from '../../src/catalog/backup-info.js';
import { backupInfoKey, backupPrefix, walKey } from '../../src/catalog/layout.js';
import { PyDateTime } from '../../src/catalog/pytime.js';
import type { ObjectStore } from '../../src/storage/types.js';

export const DAY = 24 * 60 * 60 * 1000;

export interface SyntheticBackup {
  id: string;
  status?: BackupStatus;
  timeline?: number;
  /** Segment numbers (in log 0) where the backup begins and ends. */
  beginSeg: number;
  endSeg: number;
  endTime: Date;
  name?: string;
  tablespaceOid?: number;
  error?: string;
}

export function walName(timeline: number, seg: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0') + '00000000' + seg.toString(16).toUpperCase().padStart(8, '0');
}

/** backup_id (YYYYMMDDTHHMMSS, UTC) of a time. */
export function backupIdAt(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').slice(0, 15);
}

export function syntheticInfo(b: SyntheticBackup): BackupInfo {
  const tli = b.timeline ?? 1;
  return {
    ...emptyBackupInfo(b.id),
    status: b.status ?? 'DONE',
    server_name: 'cloud',
    backup_name: b.name ?? null,
    timeline: tli,
    begin_wal: walName(tli, b.beginSeg),
    end_wal: walName(tli, b.endSeg),
    begin_xlog: `0/${(b.beginSeg * 0x1000000 + 0x28).toString(16).toUpperCase()}`,
    end_xlog: `0/${(b.endSeg * 0x1000000 + 0x100).toString(16).toUpperCase()}`,
    begin_offset: 40,
    end_offset: 256,
    begin_time: PyDateTime.fromDate(new Date(b.endTime.getTime() - 60_000)),
    end_time: PyDateTime.fromDate(b.endTime),
    version: 160004,
    systemid: '7319880513431879705',
    pgdata: '/var/lib/postgresql/data/pgdata',
    error: b.error ?? (b.status === 'FAILED' ? 'failure uploading data (synthetic)' : null),
    tablespaces: b.tablespaceOid ? [{ name: `ts${b.tablespaceOid}`, oid: b.tablespaceOid, location: `/ts/${b.tablespaceOid}` }] : null,
  };
}

/** Writes the backup's tars and backup.info; returns every key written. */
export async function writeBackup(store: ObjectStore, server: string, b: SyntheticBackup): Promise<string[]> {
  const prefix = backupPrefix(server, b.id);
  const keys = [`${prefix}data.tar`];
  if (b.tablespaceOid) keys.push(`${prefix}${b.tablespaceOid}.tar`);
  for (const key of keys) await store.put(key, Buffer.alloc(1024, b.id));
  await store.put(backupInfoKey(server, b.id), Buffer.from(serializeBackupInfo(syntheticInfo(b))));
  return [...keys, backupInfoKey(server, b.id)];
}

/** Writes WAL objects (tiny bodies) and returns their keys. */
export async function writeWals(store: ObjectStore, server: string, names: string[], extension = ''): Promise<string[]> {
  const keys = names.map((n) => walKey(server, n, extension));
  for (const key of keys) await store.put(key, Buffer.from(key));
  return keys;
}

/** Every segment name of `timeline` from `from` to `to` (log 0). */
export function segments(timeline: number, from: number, to: number): string[] {
  const out: string[] = [];
  for (let s = from; s <= to; s++) out.push(walName(timeline, s));
  return out;
}

export async function allKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) keys.push(e.object.key);
  return keys.sort();
}
