/**
 * Whether a WAL file name is already in the archive, under any compression suffix.
 *
 * Archiving must never overwrite a stored name with other bytes, so every upload first looks the
 * name up. findStoredWal asks the store with one LIST per name. The resident archiver uses
 * ArchivedWalIndex instead: it lists a segment folder (<server>/wals/<TLI+LOG>/) once, then at most
 * once per LISTING_TTL_MS and only for keys after the last one listed, and adds what this process
 * stores itself. A LIST per segment is a round trip on the hot path, and stores that walk the
 * folder for every LIST (s3rver, several S3-compatible servers) pay more for it as the folder fills.
 *
 * What this leaves unchecked is another writer storing the very name this process is about to
 * write, within that second, or storing a name that sorts before the last one listed. On stores
 * with conditional create (AWS S3, Azure, file://) put() refuses that overwrite by itself; anywhere,
 * two writers in one serverName is what the empty-archive check stops. A name the index holds but
 * the store no longer has is forgotten by the caller and uploaded again.
 */
import { walHashDir, walKey } from '../catalog/layout.js';
import { splitCodecSuffix, type CodecName } from '../codec/types.js';
import type { ObjectStore } from '../storage/types.js';
import { walFilesUnder } from './list.js';

export interface StoredWal {
  key: string;
  codec: CodecName;
  encrypted: boolean;
}

/** The stored variant of `base` among keys: only the exact name with a codec suffix, uncompressed preferred. */
function pickStoredWal(base: string, keys: Iterable<string>): StoredWal | undefined {
  let found: StoredWal | undefined;
  for (const key of keys) {
    const split = splitCodecSuffix(key);
    // Never X.partial or X.<offset>.backup for X.
    if (split.base !== base) continue;
    if (!found || (split.codec === 'none' && !split.encrypted)) found = { key, codec: split.codec, encrypted: split.encrypted };
  }
  return found;
}

async function listKeys(store: ObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const wal of walFilesUnder(store, prefix, { startAfter })) keys.push(wal.key);
  return keys;
}

/** The stored key of a WAL file name with a compression suffix, if any variant exists (one LIST). */
export async function findStoredWal(store: ObjectStore, serverName: string, name: string): Promise<StoredWal | undefined> {
  const base = walKey(serverName, name);
  return pickStoredWal(base, await listKeys(store, base));
}

/** How long a folder listing may answer "not archived yet" before the folder is listed again. */
const LISTING_TTL_MS = 1000;
/** Folders remembered per store: the archiver moves to a new one every 256 segments. */
const FOLDERS_KEPT = 4;

interface FolderListing {
  keys: Set<string>;
  listedAt: number;
  /** The last key a listing returned: the next one asks only for keys after it. */
  listedUpTo?: string;
  /** The LIST in flight, shared by every lookup that needs a fresh listing. */
  refreshing?: Promise<void>;
}

export class ArchivedWalIndex {
  private readonly stores = new WeakMap<ObjectStore, Map<string, FolderListing>>();

  constructor(private readonly ttlMs = LISTING_TTL_MS) {}

  /**
   * The stored key of `name`, from its folder's listing. A key the listing holds answers whatever
   * the listing's age (a stored object leaves it only by forget()); only "not stored" needs the folder
   * listed within the TTL, so a lookup of a listed name never costs a round trip.
   */
  async find(store: ObjectStore, serverName: string, name: string): Promise<StoredWal | undefined> {
    // .history files sit at the top of wals/, beside everything else: one LIST per name.
    if (!walHashDir(name)) return findStoredWal(store, serverName, name);
    const base = walKey(serverName, name);
    const listing = this.folder(store, base);
    const known = pickStoredWal(base, listing.keys);
    if (known || (listing.listedAt !== -Infinity && performance.now() - listing.listedAt <= this.ttlMs)) return known;
    await this.refresh(store, base, listing);
    return pickStoredWal(base, listing.keys);
  }

  /** Records a key this process stored. */
  noteStored(store: ObjectStore, key: string): void {
    this.stores.get(store)?.get(folderOf(key))?.keys.add(key);
  }

  /** Drops a key the store turned out not to have. */
  forget(store: ObjectStore, key: string): void {
    this.stores.get(store)?.get(folderOf(key))?.keys.delete(key);
  }

  private folder(store: ObjectStore, key: string): FolderListing {
    let folders = this.stores.get(store);
    if (!folders) this.stores.set(store, (folders = new Map()));
    const name = folderOf(key);
    let listing = folders.get(name);
    if (!listing) {
      listing = { keys: new Set(), listedAt: -Infinity };
      folders.set(name, listing);
      for (const old of folders.keys()) if (folders.size > FOLDERS_KEPT) folders.delete(old);
    }
    return listing;
  }

  private refresh(store: ObjectStore, key: string, listing: FolderListing): Promise<void> {
    listing.refreshing ??= (async () => {
      const startedAt = performance.now();
      try {
        // Added to, never replaced: a key this process stored while the LIST ran stays known.
        const keys = await listKeys(store, folderOf(key), listing.listedUpTo);
        for (const k of keys) listing.keys.add(k);
        if (keys.length) listing.listedUpTo = keys[keys.length - 1];
        listing.listedAt = startedAt;
      } finally {
        listing.refreshing = undefined;
      }
    })();
    return listing.refreshing;
  }
}

function folderOf(key: string): string {
  return key.slice(0, key.lastIndexOf('/') + 1);
}
