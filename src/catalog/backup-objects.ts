/**
 * The tars of one backup in the store, in the order barman-cloud-restore extracts them: data
 * first, then each tablespace by oid, parts in order. Restore downloads them and verify reads them.
 */
import { backupPrefix } from './layout.js';
import { splitCodecSuffix, type CodecName } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { PgarkError } from '../util/errors.js';
import type { Placement } from './incremental.js';

export interface BackupObject {
  key: string;
  /** The key below the backup's folder, e.g. data.tar.gz. */
  name: string;
  size: number;
  codec: CodecName;
  /** Age-encrypted (the .age suffix): decodeStreams needs the store's keys. */
  encrypted: boolean;
  /** 'data' or the tablespace oid. */
  base: string;
  /** 0 for the main tar, N for the _000N extra part. */
  part: number;
  /** Set for a member of an incremental chain: the files and links (paths relative to the tar's root) to take from this tar. */
  accept?: (path: string) => boolean;
  /** Set for a member of a chain with files stored block by block: where each of those entries' blocks go (incremental.ts Placement). */
  place?: (path: string) => Placement | undefined;
}

const TAR_RE = /^(data|\d+)(?:_(\d{4}))?\.tar$/;

/** Every tar of a backup, data first, then tablespaces by oid; parts in order. Throws when a main tar is missing. */
export async function backupObjects(
  store: ObjectStore,
  serverName: string,
  backup: { backupId: string; tablespaces: { oid: number }[] },
  prefix = backupPrefix(serverName, backup.backupId),
): Promise<BackupObject[]> {
  const found: BackupObject[] = [];
  for await (const entry of store.list(prefix)) {
    if (!entry.object) continue;
    const name = entry.object.key.slice(prefix.length);
    if (name.includes('/')) continue;
    const { base, codec, encrypted } = splitCodecSuffix(name);
    const m = TAR_RE.exec(base);
    if (!m) continue;
    found.push({ key: entry.object.key, name, size: entry.object.size, codec, encrypted, base: m[1], part: m[2] ? Number(m[2]) : 0 });
  }
  const bases = ['data', ...backup.tablespaces.map((t) => String(t.oid))];
  for (const b of bases) {
    if (!found.some((o) => o.base === b && o.part === 0)) {
      throw new PgarkError(`backup ${backup.backupId} is incomplete: ${prefix}${b}.tar[.gz|.bz2|.snappy|...] is missing`, 1);
    }
  }
  return found
    .filter((o) => bases.includes(o.base))
    .sort((a, b) => bases.indexOf(a.base) - bases.indexOf(b.base) || a.part - b.part);
}
