/**
 * Streaming extraction of one base-backup tar into a directory, refusing every entry that would
 * land outside it: absolute names, ".." segments, symbolic links whose target resolves outside,
 * hard links to names outside, and writes through a directory that resolves outside (a symlink
 * planted by an earlier entry). Only regular files, directories and links are extracted; device
 * nodes and FIFOs never belong in a PostgreSQL data directory and are refused.
 *
 * Each file's CRC-32C is computed as its bytes pass (for the backup_manifest check). Durability is
 * the caller's: each closed file is handed to `onFile` (download.ts fsyncs it, never inside the
 * extraction loop), and the directories written are returned so the caller can fsync them once,
 * after every archive is in place.
 */
import { closeSync, constants, futimesSync, openSync, writeSync } from 'node:fs';
import { link, lstat, mkdir, realpath, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type Header } from 'tar-stream';
import { Crc32c } from '../io/hash.js';
import { youngCollector } from '../util/gc.js';
import { PgarkError } from '../util/errors.js';
import { deltaSink, type DeltaStats } from './delta.js';
import { writePlaced } from './chain.js';
import type { Placement } from '../catalog/incremental.js';

export class UnsafeTarEntryError extends PgarkError {
  constructor(archive: string, entry: string, why: string) {
    super(`refusing tar entry "${entry}" in ${archive}: ${why}; nothing outside the target directory is written`, 1);
  }
}

/**
 * A file is created without following a symbolic link planted at its name (ELOOP instead): one
 * system call where an lstat then an open took two and left a window between them.
 */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** A regular file as extraction wrote it. */
export interface WrittenFile {
  size: number;
  crc32c: number;
}

export interface ExtractStats {
  files: number;
  bytes: number;
  /** Regular files by path relative to the root. */
  written: Map<string, WrittenFile>;
  /** Every directory entries were written into (the root included). */
  directories: Set<string>;
  /** Files written in part, at offsets (`place`): their checksums are known only once every tar is in (download.ts). */
  placed: Set<string>;
}

/**
 * Writes one tar member to `dest`, computing its size and CRC-32C from the bytes written. The
 * writes are synchronous on purpose: a decoded chunk goes to the page cache in one memcpy, while
 * an asynchronous write sent every chunk to the thread pool and back (tens of thousands of round
 * trips and futex wake-ups per GB, and the pool is where zlib inflates). The decoder keeps
 * inflating the next chunk on the pool while this one is written, so the two cores overlap.
 */
/** Written chunks are garbage: freed every 8 MiB (a restore's peak RSS held up to 64 MiB of them otherwise). */
const collect = youngCollector(8 * 1024 * 1024);

async function writeMember(body: Readable, dest: string, mode: number, mtime: Date | undefined, archive: string, entry: string): Promise<WrittenFile> {
  let fd: number;
  try {
    fd = openSync(dest, CREATE_FLAGS, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeTarEntryError(archive, entry, 'it would write through a symbolic link');
    throw err;
  }
  const sum = checksum();
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      sum.update(chunk);
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
      collect(chunk.length);
    }
    if (mtime) futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
  return sum.result();
}

/** --delta's member: compared with the file already there and written from the first difference on (delta.ts). */
async function deltaMember(body: Readable, dest: string, mode: number, mtime: Date | undefined, delta: DeltaStats, archive: string, entry: string): Promise<WrittenFile> {
  const existing = await lstat(dest).catch(() => undefined);
  if (existing?.isSymbolicLink()) throw new UnsafeTarEntryError(archive, entry, 'it would write through a symbolic link');
  const sum = checksum();
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sum.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(body, tap, deltaSink(dest, mode, delta));
  if (mtime) await utimes(dest, mtime, mtime);
  return sum.result();
}

/** A member's size and CRC-32C, from its bytes as they pass. */
function checksum(): { update(chunk: Buffer): void; result(): WrittenFile } {
  const crc = new Crc32c();
  let size = 0;
  return {
    update(chunk) {
      crc.update(chunk);
      size += chunk.length;
    },
    result: () => ({ size, crc32c: crc.digest() }),
  };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The entry's path relative to the root ('' for the root itself), or why it is unsafe. */
export function entryPath(name: string): { path: string } | { unsafe: string } {
  if (name.startsWith('/')) return { unsafe: 'absolute path' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { unsafe: 'path contains ".."' };
  if (name.includes('\0')) return { unsafe: 'path contains a NUL byte' };
  return { path: parts.join('/') };
}

export interface ExtractOptions {
  /** Takes only the non-directory entries whose path it accepts (a member of an incremental chain, chain.ts). */
  accept?: (path: string) => boolean;
  /** Called with each file (and its size) once it is closed: download.ts fsyncs it. */
  onFile?: (path: string, size: number) => void;
  /** --delta: write only what differs from the files already there (delta.ts). */
  delta?: DeltaStats;
  /** Entries written at an offset into a file other tars write too (a block-level incremental chain, chain.ts); before `accept`. */
  place?: (path: string) => Placement | undefined;
}

/**
 * Extracts into `root` (which must exist) the tar read from `source`: one stream, or a chain such as
 * [store object, byte counter, decompressor] that is piped into the extractor as one pipeline.
 */
export async function extractTar(source: Readable | Readable[], root: string, archive: string, { accept, onFile = () => undefined, delta, place }: ExtractOptions = {}): Promise<ExtractStats> {
  const realRoot = await realpath(root);
  const stats: ExtractStats = { files: 0, bytes: 0, written: new Map(), directories: new Set([realRoot]), placed: new Set() };
  const extractor = tarExtract();
  const stages = Array.isArray(source) ? source : [source];
  const feeding = pipeline([...stages, extractor]);
  // A decoder can fail while an entry is being written. The entry's stream then never ends, so the
  // write is raced against the failure; unobserved, the rejection would kill pgark (or the stalled
  // write let it exit 0) before it removes what it extracted.
  feeding.catch(() => undefined);
  const broken = feeding.then(() => new Promise<never>(() => undefined));
  broken.catch(() => undefined);
  let current: Readable | undefined;
  let handled: Promise<void> | undefined;
  // Verified parents are cached: most entries share a handful of directories.
  const safeDirs = new Set<string>([realRoot]);

  async function checkedParent(dest: string, entry: string): Promise<void> {
    const dir = dirname(dest);
    if (safeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const real = await realpath(dir);
    if (!inside(realRoot, real)) throw new UnsafeTarEntryError(archive, entry, `its directory resolves to ${real}, outside the target`);
    safeDirs.add(dir);
    // mkdir may have created several levels: each new entry needs its parent fsynced.
    for (let d = real; d !== realRoot; d = dirname(d)) stats.directories.add(d);
  }

  async function handle(header: Header, body: Readable): Promise<void> {
    const parsed = entryPath(header.name);
    if ('unsafe' in parsed) throw new UnsafeTarEntryError(archive, header.name, parsed.unsafe);
    const placement = header.type === 'file' || header.type === 'contiguous-file' ? place?.(parsed.path) : undefined;
    if (placement) {
      const target = join(realRoot, placement.path);
      await checkedParent(target, header.name);
      if ((await lstat(target).catch(() => undefined))?.isSymbolicLink()) throw new UnsafeTarEntryError(archive, header.name, 'it would write through a symbolic link');
      await writePlaced(body, target, ((header.mode ?? 0o600) & 0o7777) || 0o600, placement);
      stats.bytes += header.size ?? 0;
      stats.placed.add(placement.path);
      return;
    }
    if (accept && header.type !== 'directory' && !accept(parsed.path)) {
      body.resume();
      return;
    }
    const dest = parsed.path === '' ? realRoot : join(realRoot, parsed.path);
    const mode = (header.mode ?? 0o600) & 0o7777;
    switch (header.type) {
      case 'directory':
        if (dest !== realRoot) {
          await checkedParent(dest, header.name);
          await mkdir(dest, { recursive: true, mode: 0o700 });
          stats.directories.add(dest);
        }
        body.resume();
        return;
      case 'file':
      case 'contiguous-file': {
        if (dest === realRoot) throw new UnsafeTarEntryError(archive, header.name, 'a file entry names the target directory itself');
        await checkedParent(dest, header.name);
        const written = delta ? await deltaMember(body, dest, mode || 0o600, header.mtime, delta, archive, header.name) : await writeMember(body, dest, mode || 0o600, header.mtime, archive, header.name);
        onFile(dest, written.size);
        stats.files++;
        stats.bytes += header.size ?? 0;
        stats.written.set(parsed.path, written);
        return;
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        if (isAbsolute(target)) throw new UnsafeTarEntryError(archive, header.name, `symbolic link to absolute path ${target}`);
        if (!inside(realRoot, resolve(dirname(dest), target))) throw new UnsafeTarEntryError(archive, header.name, `symbolic link to ${target} points outside`);
        await checkedParent(dest, header.name);
        if (delta) await rm(dest, { force: true });
        await symlink(target, dest);
        body.resume();
        return;
      }
      case 'link': {
        const target = entryPath(header.linkname ?? '');
        if ('unsafe' in target) throw new UnsafeTarEntryError(archive, header.name, `hard link target: ${target.unsafe}`);
        const source = join(realRoot, target.path);
        const realSource = await realpath(source).catch(() => source);
        if (!inside(realRoot, realSource)) throw new UnsafeTarEntryError(archive, header.name, `hard link to ${header.linkname} points outside`);
        await checkedParent(dest, header.name);
        if (delta) await rm(dest, { force: true });
        await link(realSource, dest);
        body.resume();
        return;
      }
      default:
        throw new UnsafeTarEntryError(archive, header.name, `entry type ${header.type} is not allowed in a data directory`);
    }
  }

  try {
    for await (const entry of extractor) {
      current = entry as unknown as Readable;
      handled = handle(entry.header, current);
      handled.catch(() => undefined);
      await Promise.race([handled, broken]);
    }
    await feeding;
  } catch (err) {
    current?.destroy();
    for (const s of stages) s.destroy();
    extractor.destroy();
    await feeding.catch(() => undefined);
    // The entry in hand may still be creating its directories or file: the caller removes what was
    // extracted once this rejects, and a mkdir finishing after that left a directory behind.
    await handled?.catch(() => undefined);
    throw err;
  }
  return stats;
}
