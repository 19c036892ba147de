/**
 * The sidecar written next to each dump after every byte of it is stored: its presence is what makes
 * a dump complete, and its size and SHA-256 let restore verify what it downloads.
 */
import type { Encryption } from '../config/types.js';
import type { ObjectStore } from '../storage/types.js';
import { NotFoundError } from '../util/errors.js';
import type { DumpCodec, DumpFormat } from './keys.js';

export interface DumpMeta {
  version: 1;
  kind: 'database' | 'globals';
  /** Source database; absent for globals. */
  database?: string;
  format: DumpFormat;
  codec: DumpCodec;
  /** Bytes of the stored object (after compression). */
  size: number;
  /** Hex SHA-256 of the stored object. */
  sha256: string;
  serverVersion: string;
  pgDumpVersion: string;
  scope: string;
  startedAt: string;
  finishedAt: string;
}

export async function writeMeta(store: ObjectStore, key: string, meta: DumpMeta, encryption?: Encryption): Promise<void> {
  await store.put(key, Buffer.from(JSON.stringify(meta, null, 2) + '\n'), { contentType: 'application/json', encryption });
}

/** The sidecar, or undefined when it is absent or unreadable (an incomplete or foreign dump). */
export async function readMeta(store: ObjectStore, key: string): Promise<DumpMeta | undefined> {
  let body: Buffer;
  try {
    body = await store.getBuffer(key);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
  try {
    const parsed = JSON.parse(body.toString('utf8')) as DumpMeta;
    return parsed.version === 1 && typeof parsed.sha256 === 'string' && typeof parsed.size === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
