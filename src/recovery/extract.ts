/**
 * Streaming extraction of one base-backup tar into a directory, refusing every entry that would
 * land outside it: absolute names, ".." segments, symbolic links whose target resolves outside,
 * hard links to names outside, and writes through a directory that resolves outside (a symlink
 * planted by an earlier entry). Only regular files, directories and links are extracted; device
 * nodes and FIFOs never belong in a PostgreSQL data directory and are refused.
 */
import { createWriteStream } from 'node:fs';
import { link, lstat, mkdir, realpath, symlink, utimes } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type Header } from 'tar-stream';
import { PgarkError } from '../util/errors.js';

export class UnsafeTarEntryError extends PgarkError {
  constructor(archive: string, entry: string, why: string) {
    super(`refusing tar entry "${entry}" in ${archive}: ${why}; nothing outside the target directory is written`, 1);
  }
}

export interface ExtractStats {
  files: number;
  bytes: number;
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

/** Extracts the tar read from `tarStream` into `root` (which must exist). */
export async function extractTar(tarStream: Readable, root: string, archive: string): Promise<ExtractStats> {
  const realRoot = await realpath(root);
  const stats: ExtractStats = { files: 0, bytes: 0 };
  const extractor = tarExtract();
  const feeding = pipeline(tarStream, extractor);
  // Verified parents are cached: most entries share a handful of directories.
  const safeDirs = new Set<string>([realRoot]);

  async function checkedParent(dest: string, entry: string): Promise<void> {
    const dir = dirname(dest);
    if (safeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const real = await realpath(dir);
    if (!inside(realRoot, real)) throw new UnsafeTarEntryError(archive, entry, `its directory resolves to ${real}, outside the target`);
    safeDirs.add(dir);
  }

  async function handle(header: Header, body: Readable): Promise<void> {
    const parsed = entryPath(header.name);
    if ('unsafe' in parsed) throw new UnsafeTarEntryError(archive, header.name, parsed.unsafe);
    const dest = parsed.path === '' ? realRoot : join(realRoot, parsed.path);
    const mode = (header.mode ?? 0o600) & 0o7777;
    switch (header.type) {
      case 'directory':
        if (dest !== realRoot) {
          await checkedParent(dest, header.name);
          await mkdir(dest, { recursive: true, mode: 0o700 });
        }
        body.resume();
        return;
      case 'file':
      case 'contiguous-file': {
        if (dest === realRoot) throw new UnsafeTarEntryError(archive, header.name, 'a file entry names the target directory itself');
        await checkedParent(dest, header.name);
        const existing = await lstat(dest).catch(() => undefined);
        if (existing?.isSymbolicLink()) throw new UnsafeTarEntryError(archive, header.name, 'it would write through a symbolic link');
        await pipeline(body, createWriteStream(dest, { mode: mode || 0o600 }));
        if (header.mtime) await utimes(dest, header.mtime, header.mtime);
        stats.files++;
        stats.bytes += header.size ?? 0;
        return;
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        if (isAbsolute(target)) throw new UnsafeTarEntryError(archive, header.name, `symbolic link to absolute path ${target}`);
        if (!inside(realRoot, resolve(dirname(dest), target))) throw new UnsafeTarEntryError(archive, header.name, `symbolic link to ${target} points outside`);
        await checkedParent(dest, header.name);
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
      await handle(entry.header, entry as unknown as Readable);
    }
    await feeding;
  } catch (err) {
    tarStream.destroy();
    extractor.destroy();
    await feeding.catch(() => undefined);
    throw err;
  }
  return stats;
}
