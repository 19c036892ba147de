/**
 * The oldest WAL file a cluster still needs (WAL.SetFirstRequired), kept in the store beside the
 * barman-cloud layout at <serverName>/pgark/first-required.json, so the retention loop, in this
 * process or another, never deletes WAL at or after it. barman-cloud ignores the pgark/ folder.
 */
import { serverPrefix } from '../catalog/layout.js';
import type { ObjectStore } from '../storage/types.js';
import { NotFoundError } from '../util/errors.js';

export function firstRequiredKey(serverName: string): string {
  return `${serverPrefix(serverName)}pgark/first-required.json`;
}

export interface FirstRequired {
  /** WAL file name, e.g. 000000010000000000000012. */
  firstRequiredWal: string;
  /** When the cluster reported it (ISO 8601). */
  setAt: string;
}

export async function writeFirstRequired(store: ObjectStore, serverName: string, wal: string, now = new Date()): Promise<FirstRequired> {
  const record: FirstRequired = { firstRequiredWal: wal, setAt: now.toISOString() };
  await store.put(firstRequiredKey(serverName), Buffer.from(JSON.stringify(record) + '\n'), { contentType: 'application/json' });
  return record;
}

/** The recorded first required WAL, or undefined when the cluster never set one. */
export async function readFirstRequired(store: ObjectStore, serverName: string): Promise<FirstRequired | undefined> {
  let body: Buffer;
  try {
    body = await store.getBuffer(firstRequiredKey(serverName));
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  const parsed = JSON.parse(body.toString('utf8')) as Partial<FirstRequired>;
  if (typeof parsed.firstRequiredWal !== 'string') throw new Error(`${firstRequiredKey(serverName)} in ${store.displayUrl} holds no firstRequiredWal`);
  return { firstRequiredWal: parsed.firstRequiredWal, setAt: String(parsed.setAt ?? '') };
}
