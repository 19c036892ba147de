/**
 * The member index of one pgark tar: where each member's header starts in the tar, where it ends,
 * and which byte range of the stored (compressed) object holds it, beginning at a restart point
 * (a frame start) from which it decodes on its own. A delta restore reads it to fetch only the
 * members it needs with ranged reads (recovery/delta-ranged.ts); backup/tar-index.ts writes it.
 *
 * It is stored beside the tar as pgark-index-<tar name>.json, before backup.info (the commit). The
 * name starts neither with "data" nor a tablespace oid, so barman-cloud-restore, which picks a
 * backup's objects by those prefixes, never sees it. Only tars whose codec has restart points
 * (none, lz4, zstd) and that are not age-encrypted get one.
 */
import type { ObjectStore, PutOptions } from '../storage/types.js';
import { readText } from './catalog.js';

export const TAR_INDEX_FORMAT = 'pgark-tar-index';

export type TarMemberType = 'file' | 'directory' | 'symlink' | 'other';

export interface TarIndexMember {
  /** As the tar names it, relative to the archive root ('' for the root). */
  path: string;
  type: TarMemberType;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Bytes of content (0 but for files). */
  size: number;
  /** CRC-32C of the content (files only): the value backup_manifest lists. */
  crc32c?: number;
  /** Target of a symbolic link. */
  link?: string;
  /** Offset in the tar of the member's first header block (an extended header's, when it has one). */
  header: number;
  /** Offset in the tar just after its content's padding. */
  end: number;
  /** Offset in the tar where decoding of `from` starts (<= header). */
  restart: number;
  /** Stored bytes [from, to) that decode to tar offsets [restart, >= end). */
  from: number;
  to: number;
}

export interface TarIndex {
  format: typeof TAR_INDEX_FORMAT;
  version: 1;
  /** The tar's name in the backup's folder, e.g. data.tar.zst. */
  object: string;
  codec: string;
  /** Stored size and SHA-256 of the tar: a restore uses the index only for that very object. */
  size: number;
  sha256: string;
  members: TarIndexMember[];
}

/** The index's key beside a tar's key. */
export function tarIndexKey(tarKey: string): string {
  const slash = tarKey.lastIndexOf('/');
  return `${tarKey.slice(0, slash + 1)}pgark-index-${tarKey.slice(slash + 1)}.json`;
}

export function serializeTarIndex(index: TarIndex): Buffer {
  return Buffer.from(JSON.stringify(index));
}

export async function writeTarIndex(store: ObjectStore, tarKey: string, index: TarIndex, options: Pick<PutOptions, 'tags' | 'encryption'>): Promise<void> {
  await store.put(tarIndexKey(tarKey), serializeTarIndex(index), { ...options, contentType: 'application/json' });
}

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Why a member is unusable, or undefined. */
function memberProblem(m: TarIndexMember, size: number): string | undefined {
  if (typeof m.path !== 'string' || !['file', 'directory', 'symlink', 'other'].includes(m.type)) return 'path or type';
  if (![m.mode, m.size, m.header, m.end, m.restart, m.from, m.to].every(count) || !Number.isFinite(m.mtime)) return 'a number field';
  if (m.type === 'file' && !count(m.crc32c)) return 'crc32c';
  if (m.type === 'symlink' && typeof m.link !== 'string') return 'link';
  if (!(m.restart <= m.header && m.header + 512 + m.size <= m.end)) return 'tar offsets';
  if (!(m.from < m.to && m.to <= size)) return `stored range ${m.from}-${m.to} of an object of ${size} bytes`;
  return undefined;
}

/** An index that is not JSON or not of this format. */
export class TarIndexError extends Error {}

/** Parses and checks an index; throws a TarIndexError saying which field is wrong. */
export function parseTarIndex(text: string): TarIndex {
  try {
    return checked(JSON.parse(text) as TarIndex);
  } catch (err) {
    throw new TarIndexError((err as Error).message);
  }
}

function checked(index: TarIndex): TarIndex {
  if (index?.format !== TAR_INDEX_FORMAT || index.version !== 1) throw new Error(`format/version: expected ${TAR_INDEX_FORMAT} version 1`);
  if (typeof index.object !== 'string' || typeof index.codec !== 'string' || !count(index.size) || typeof index.sha256 !== 'string') throw new Error('object, codec, size or sha256: missing or of the wrong type');
  if (!Array.isArray(index.members)) throw new Error('members: expected a list');
  index.members.forEach((m, i) => {
    const problem = memberProblem(m, index.size);
    if (problem) throw new Error(`members[${i}] (${String(m?.path)}): ${problem} is invalid`);
  });
  return index;
}

/** The index of a tar, or undefined when none was stored (barman-cloud's tars, older pgark's, codecs without restart points). */
export async function readTarIndex(store: ObjectStore, tarKey: string): Promise<{ index: TarIndex; bytes: number } | undefined> {
  const text = await readText(store, tarIndexKey(tarKey));
  return text === undefined ? undefined : { index: parseTarIndex(text), bytes: Buffer.byteLength(text) };
}
