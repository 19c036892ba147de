/** Finding logical dumps in a store: listing newest first, and resolving "latest". */
import type { ObjectStore } from '../storage/types.js';
import { NotFoundError } from '../util/errors.js';
import { META_SUFFIX, parseDumpKey, type ParsedDumpKey } from './keys.js';

export interface DumpEntry extends ParsedDumpKey {
  size: number;
  lastModified?: Date;
  /** Set when the sidecar exists, i.e. the dump is complete. */
  metaKey?: string;
}

/** Every dump under prefix, newest first (ties broken by key so the order is stable). */
export async function listDumps(store: ObjectStore, prefix = ''): Promise<DumpEntry[]> {
  const dumps: DumpEntry[] = [];
  const metas = new Set<string>();
  for await (const entry of store.list(prefix)) {
    const obj = entry.object;
    if (!obj) continue;
    if (obj.key.endsWith(META_SUFFIX)) {
      metas.add(obj.key);
      continue;
    }
    const parsed = parseDumpKey(obj.key);
    if (parsed) dumps.push({ ...parsed, size: obj.size, lastModified: obj.lastModified });
  }
  for (const d of dumps) if (metas.has(d.key + META_SUFFIX)) d.metaKey = d.key + META_SUFFIX;
  return dumps.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || a.key.localeCompare(b.key));
}

/** Dumps a restore can use: complete database dumps plus legacy (sidecar-less) epoch dumps. */
export function restorable(entries: DumpEntry[]): DumpEntry[] {
  return entries.filter((e) => e.kind === 'database' && (e.metaKey || e.database === undefined));
}

/**
 * "latest": the newest restorable dump of `database` when there is one, else the newest restorable dump
 * of any database (a one-database job restored under another name).
 */
export function pickLatest(entries: DumpEntry[], database: string | undefined, where: string): DumpEntry {
  const candidates = restorable(entries);
  const own = candidates.find((e) => e.database === database);
  const chosen = own ?? candidates[0];
  if (!chosen) {
    throw new NotFoundError(`no complete logical dump found in ${where} (looked for keys like <scope>/logical_backups/<timestamp>/<database>.sql.gz)`);
  }
  return chosen;
}
