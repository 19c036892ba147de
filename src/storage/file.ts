/**
 * file:// driver: a local directory as an object store (the embedded default, and the test
 * baseline). Writes are atomic and durable: data goes to a temp file beside the target, is
 * fsynced, then renamed (or hard-linked for ifAbsent, which fails atomically when the name
 * exists) and the directory is fsynced, so a crash leaves either no object or the whole one.
 * Objects are 0600 and directories 0700 whatever the umask (see createTemp).
 * Metadata and tags are not kept (limits.metadata/tags = false).
 */
import { constants } from 'node:fs';
import { type FileHandle, chmod, chown, link, mkdir, open, readdir, rename, rmdir, stat, unlink, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { addAbortSignal, type Readable } from 'node:stream';
import { NotFoundError } from '../util/errors.js';
import { copied } from '../io/lent.js';
import type { GetOptions, ListEntry, ListOptions, ObjectInfo, ObjectStore, PutOptions, PutResult, StorageLimits } from './types.js';
import { storageError } from './errors.js';
import { assertKey } from './keys.js';

/** Temp files carry this prefix; listing hides them. */
const TEMP_MARK = '.pgark-tmp-';

const PRIVATE_FILE = 0o600;
const PRIVATE_DIR = 0o700;

export class FileObjectStore implements ObjectStore {
  readonly provider = 'file' as const;
  readonly limits: StorageLimits = {
    minPartSize: 1,
    maxPartSize: Number.MAX_SAFE_INTEGER,
    maxParts: 1,
    deleteBatchSize: 1000,
    conditionalCreate: true,
    metadata: false,
    tags: false,
  };

  constructor(
    readonly root: string,
    readonly displayUrl: string,
  ) {}

  private path(key: string): string {
    assertKey(key);
    return join(this.root, key);
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    const target = this.path(key);
    const dir = dirname(target);
    const temp = join(dir, `${TEMP_MARK}${randomBytes(6).toString('hex')}`);
    try {
      const { handle, newDirs } = await createTemp(dir, temp);
      const size = await writeDurably(handle, body, opts);
      try {
        if (opts.ifAbsent) {
          try {
            await link(temp, target);
          } catch (e: any) {
            if (e?.code === 'EEXIST') return { status: 'exists', size: (await stat(target)).size };
            throw e;
          }
        } else {
          await rename(temp, target);
        }
      } finally {
        if (opts.ifAbsent) await unlink(temp).catch(() => undefined);
      }
      // The new name, and any directory mkdir just created, must survive a crash too.
      for (const d of [dir, ...newDirs]) await fsyncDir(d);
      return { status: 'created', size };
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw storageError('put', key, this.displayUrl, e);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    // Open first so a missing object is reported here rather than as a stream error.
    const fh = await open(this.path(key), constants.O_RDONLY).catch((e) => {
      throw e?.code === 'ENOENT' ? new NotFoundError(`object "${key}" not found in ${this.displayUrl}`) : storageError('get', key, this.displayUrl, e);
    });
    const stream = fh.createReadStream({ start: opts.start, end: opts.end });
    return opts.signal ? addAbortSignal(opts.signal, stream) : stream;
  }

  async getBuffer(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (e: any) {
      if (e?.code === 'ENOENT') throw new NotFoundError(`object "${key}" not found in ${this.displayUrl}`);
      throw storageError('get', key, this.displayUrl, e);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size, lastModified: s.mtime } : undefined;
    } catch (e: any) {
      if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') return undefined;
      throw storageError('head', key, this.displayUrl, e);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    // The directory holding the prefix, and the part of the last segment names must start with.
    const cut = prefix.lastIndexOf('/') + 1;
    const dirKey = prefix.slice(0, cut);
    try {
      for await (const entry of this.walk(dirKey, prefix.slice(cut), opts.delimiter !== undefined, opts.signal)) {
        if (opts.startAfter === undefined || (entry.object?.key ?? entry.prefix!) > opts.startAfter) yield entry;
      }
    } catch (e) {
      throw storageError('list', prefix, this.displayUrl, e);
    }
  }

  /** Yields keys in the byte order S3 uses: a directory sorts as its name followed by '/'. */
  private async *walk(dirKey: string, namePrefix: string, oneLevel: boolean, signal?: AbortSignal): AsyncGenerator<ListEntry> {
    signal?.throwIfAborted();
    let entries;
    try {
      entries = await readdir(join(this.root, dirKey), { withFileTypes: true });
    } catch (e: any) {
      if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') return;
      throw e;
    }
    const named = entries
      .filter((e) => e.name.startsWith(namePrefix) && !e.name.startsWith(TEMP_MARK) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ sortKey: e.isDirectory() ? `${e.name}/` : e.name, entry: e }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const { sortKey, entry } of named) {
      const key = dirKey + sortKey;
      if (entry.isDirectory()) {
        if (!oneLevel) yield* this.walk(key, '', false, signal);
        else if (await this.holdsObjects(key)) yield { prefix: key };
      } else {
        const s = await stat(join(this.root, key)).catch(() => undefined);
        if (s) yield { object: { key, size: s.size, lastModified: s.mtime } };
      }
    }
  }

  /** Whether a directory has an object somewhere below it (object stores have no empty "directories"). */
  private async holdsObjects(dirKey: string): Promise<boolean> {
    for await (const _ of this.walk(dirKey, '', false)) return true;
    return false;
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      const path = this.path(key);
      try {
        await unlink(path);
      } catch (e: any) {
        if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') continue;
        throw storageError('delete', key, this.displayUrl, e);
      }
      await this.pruneEmptyDirs(dirname(path));
    }
  }

  /** Removes now-empty parent directories up to the root, as deleting the last key of a prefix does on S3. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + '/') && dir !== this.root) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty, or a concurrent writer recreated it
      }
      dir = dirname(dir);
    }
  }

  async close(): Promise<void> {}
}

/**
 * Creates the temp file, recreating its directory if a concurrent delete pruned it meanwhile.
 * newDirs lists the parents whose entries changed because mkdir created directories.
 *
 * Backups and WAL are the whole database, so everything created here is private to its owner.
 * The modes are set explicitly because the ones given to mkdir/open are cut by the umask, which
 * differs between PostgreSQL's archive_command (0077), a shell (often 0022) and a container.
 */
async function createTemp(dir: string, temp: string): Promise<{ handle: FileHandle; newDirs: string[] }> {
  const newDirs = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    const firstCreated = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    if (firstCreated) {
      const owner = await inheritedOwner(dirname(firstCreated));
      for (let d = dir; d !== dirname(firstCreated); d = dirname(d)) {
        newDirs.add(dirname(d));
        await chmod(d, PRIVATE_DIR);
        if (owner) await chown(d, owner.uid, owner.gid);
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(temp, 'wx', PRIVATE_FILE);
    } catch (e: any) {
      if (e?.code !== 'ENOENT' || attempt >= 5) throw e;
      continue;
    }
    try {
      await handle.chmod(PRIVATE_FILE);
      const owner = await inheritedOwner(dir);
      if (owner) await handle.chown(owner.uid, owner.gid);
    } catch (e) {
      await handle.close();
      throw e;
    }
    return { handle, newDirs: [...newDirs] };
  }
}

/**
 * When pgark runs as root (a backup or restore run by hand) while PostgreSQL's archive_command
 * runs as the postgres user, what root creates would be root's, and private, so the next
 * archive_command (or a listing by the postgres user) would fail with EACCES. New directories and
 * objects therefore take the owner of the directory they are created in, as a setgid directory
 * does for groups; undefined when nothing is to change.
 */
async function inheritedOwner(parent: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const s = await stat(parent);
  return s.uid === 0 && s.gid === 0 ? undefined : { uid: s.uid, gid: s.gid };
}

/** Writes body to the open file, fsyncs and closes it; returns the byte count. */
async function writeDurably(fh: FileHandle, body: Buffer | Readable, opts: PutOptions): Promise<number> {
  let size = 0;
  try {
    if (Buffer.isBuffer(body)) {
      await fh.writeFile(body);
      size = body.length;
    } else {
      for await (const chunk of body) {
        opts.signal?.throwIfAborted();
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        // write(2) may store less than asked (a full disk says so only on the next call).
        for (let done = 0; done < buf.length; ) done += (await fh.write(buf, done, buf.length - done)).bytesWritten;
        // In the file now: a backup's read buffer is lent again instead of left to the collector
        // (io/lent.ts), as the S3 part reader does once it copied a chunk into a part.
        copied(buf);
        size += buf.length;
        opts.onProgress?.(size);
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (Buffer.isBuffer(body)) opts.onProgress?.(size);
  return size;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
