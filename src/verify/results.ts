/**
 * Where verify results live in the store: <server>/pgark/verify/<UTC time>.json, one object per
 * run, beside base/ and wals/ (barman-cloud lists only those two, so it never sees them). Keys
 * sort by time, so the newest run is the last key.
 */
import type { CatalogWriteOptions } from '../catalog/catalog.js';
import type { ObjectStore } from '../storage/types.js';
import { VERIFY_RESULT_VERSION, type VerifyResult } from './report.js';

export function verifyResultsPrefix(serverName: string): string {
  return `${serverName}/pgark/verify/`;
}

/** 2026-12-05T13:20:00.123Z -> 20261205T132000.123Z: sortable, and no ':' (awkward in some stores' consoles). */
export function verifyResultKey(serverName: string, at: Date): string {
  return `${verifyResultsPrefix(serverName)}${at.toISOString().replace(/[-:]/g, '')}.json`;
}

export async function storeVerifyResult(store: ObjectStore, key: string, result: VerifyResult, write: CatalogWriteOptions): Promise<void> {
  await store.put(key, Buffer.from(JSON.stringify(result, null, 2) + '\n'), { ...write, contentType: 'application/json' });
}

/**
 * The newest stored run that verified everything it chose, and its key; undefined when there is
 * none. Runs are read newest first; one that cannot be read or is of another version is skipped.
 */
export async function lastSuccessfulRun(store: ObjectStore, serverName: string): Promise<{ key: string; result: VerifyResult } | undefined> {
  const keys: string[] = [];
  for await (const e of store.list(verifyResultsPrefix(serverName))) if (e.object?.key.endsWith('.json')) keys.push(e.object.key);
  keys.sort();
  for (const key of keys.reverse()) {
    let result: VerifyResult;
    try {
      result = JSON.parse((await store.getBuffer(key)).toString('utf8')) as VerifyResult;
    } catch {
      continue;
    }
    if (result.version === VERIFY_RESULT_VERSION && result.ok === true) return { key, result };
  }
  return undefined;
}
