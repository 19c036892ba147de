/**
 * Delta restore by ranged reads: for a tar with a member index (catalog/tar-index.ts), the files
 * already in the data directory with the size and CRC-32C the index records (the values
 * backup_manifest lists) are kept without a byte of them being fetched; only the other members
 * are read from the store, each run of neighbouring ones with one ranged GET from the restart
 * point before it, decoded, cut to those members and extracted by extractTar with the delta sink.
 *
 * A CRC-32C cannot tell apart versions of a file that carries its own CRC-32C at its end (then
 * zero padding): every version has the same whole-file CRC-32C. PostgreSQL writes pg_control
 * (8192 bytes, of which the last 7904 follow its CRC), pg_filenode.map and two-phase state files
 * so; a promoted server's pg_control (timeline 2, shut down) would pass for the backup's. Members
 * with such a CRC are always fetched and compared byte by byte (selfCheckedCrcs).
 *
 * Tars that cannot be read from the middle (gzip, bzip2, snappy and xz have no restart points;
 * age-encrypted tars; tars without an index, i.e. barman-cloud's and older pgark's) are streamed
 * whole as before, and the reason is returned for the output. The whole-object SHA-256 cannot be
 * checked on a ranged read: the index is used only for the object whose size and SHA-256
 * (recorded in backup.info) it names, and every restored file is still checked against
 * backup_manifest afterwards.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, realpath, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { decodeStreams, isFramedCodec, type AgeKeys } from '../codec/index.js';
import { Crc32c, selfCheckedCrcs } from '../io/hash.js';
import type { ObjectStore } from '../storage/types.js';
import { readTarIndex, TarIndexError, type TarIndex, type TarIndexMember } from '../catalog/tar-index.js';
import type { BackupObject } from './catalog-view.js';
import { entryPath, extractTar, UnsafeTarEntryError, type ExtractStats } from './extract.js';
import type { DeltaStats } from './delta.js';

export type IndexLookup = { index: TarIndex; bytes: number } | { fallback: string };

/** The object's index when a delta can use it, else why the object streams whole. */
export async function usableIndex(store: ObjectStore, o: BackupObject, recordedSha256: string | undefined): Promise<IndexLookup> {
  if (o.encrypted) return { fallback: `${o.name} is age-encrypted, which cannot be read from the middle` };
  if (!isFramedCodec(o.codec)) return { fallback: `${o.name} is ${o.codec}-compressed, which has no restart points for ranged reads` };
  let read: Awaited<ReturnType<typeof readTarIndex>>;
  try {
    read = await readTarIndex(store, o.key);
  } catch (err) {
    if (err instanceof TarIndexError) return { fallback: `${o.name}'s member index is unreadable (${err.message})` };
    throw err;
  }
  if (!read) return { fallback: `${o.name} has no member index (written by barman-cloud, or by an older pgark)` };
  const { index } = read;
  if (index.object !== o.name || index.size !== o.size || (recordedSha256 !== undefined && index.sha256 !== recordedSha256)) {
    return { fallback: `${o.name}'s member index describes another object (${index.object}, ${index.size} bytes)` };
  }
  return read;
}

/** Members fetched with one ranged read: [from, to) of the object, decoding from tar offset `restart`. */
interface Run {
  from: number;
  to: number;
  restart: number;
  first: TarIndexMember;
  last: TarIndexMember;
}

/** Neighbouring members whose stored ranges touch are one read. */
function runsOf(members: TarIndexMember[]): Run[] {
  const runs: Run[] = [];
  for (const m of members) {
    const run = runs[runs.length - 1];
    if (run && m.from <= run.to) {
      run.to = Math.max(run.to, m.to);
      run.last = m;
    } else runs.push({ from: m.from, to: m.to, restart: m.restart, first: m, last: m });
  }
  return runs;
}

/**
 * Passes tar bytes [skip, skip + take) of the decoded stream, then the two zero blocks that end a
 * tar, so the extractor sees a complete archive; the decoded rest of the last frame is dropped.
 */
function tarSlice(skip: number, take: number): Transform {
  let at = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const start = Math.max(0, skip - at);
      const end = Math.min(chunk.length, skip + take - at);
      at += chunk.length;
      cb(null, end > start ? chunk.subarray(start, end) : undefined);
    },
    flush(cb) {
      cb(null, Buffer.alloc(1024));
    },
  });
}

async function fileCrc(path: string): Promise<number> {
  const crc = new Crc32c();
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) crc.update(chunk as Buffer);
  return crc.digest();
}

/**
 * True when the file at `dest` (a regular file, not through a link, inside the root) has the
 * member's size and CRC-32C, and that CRC tells its contents apart.
 */
async function sameFile(realRoot: string, dest: string, m: TarIndexMember): Promise<boolean> {
  if (m.crc32c !== undefined && selfCheckedCrcs().has(m.crc32c)) return false;
  const st = await lstat(dest).catch(() => undefined);
  if (!st?.isFile() || st.size !== m.size) return false;
  const dir = await realpath(dirname(dest));
  if (dir !== realRoot && !dir.startsWith(`${realRoot}/`)) return false;
  return (await fileCrc(dest)) === m.crc32c;
}

export interface RangedOptions {
  delta: DeltaStats;
  accept?: (path: string) => boolean;
  onFile: (path: string, size: number) => void;
  /** Counts the stored bytes read (the restore's progress and transfer figure). */
  counter: () => Transform;
  age?: AgeKeys;
}

/** Files compared at once: each reads its file through; more only queue on the disk. */
const COMPARE_WIDTH = 4;

/** Restores one indexed tar into `root` (which exists), fetching only the members that differ. */
export async function extractChanged(store: ObjectStore, o: BackupObject, index: TarIndex, root: string, opts: RangedOptions): Promise<ExtractStats> {
  const realRoot = await realpath(root);
  const stats: ExtractStats = { files: 0, bytes: 0, written: new Map(), directories: new Set([realRoot]), placed: new Set() };
  const wanted: TarIndexMember[] = [];
  const wantedPaths = new Set<string>();
  const files: TarIndexMember[] = [];
  for (const m of index.members) {
    const parsed = entryPath(m.path);
    if ('unsafe' in parsed) throw new UnsafeTarEntryError(o.key, m.path, parsed.unsafe);
    if (m.type === 'directory') {
      // Directories cost no transfer: made here, as extraction would (mode 0700).
      if (parsed.path !== '') {
        const dest = join(realRoot, parsed.path);
        await mkdir(dest, { recursive: true, mode: 0o700 });
        const real = await realpath(dest);
        if (!real.startsWith(`${realRoot}/`)) throw new UnsafeTarEntryError(o.key, m.path, `its directory resolves to ${real}, outside the target`);
        stats.directories.add(dest);
      }
    } else if (!opts.accept || opts.accept(parsed.path)) {
      if (m.type === 'file') files.push(m);
      else wanted.push(m);
    }
  }
  let next = 0;
  const compare = async () => {
    while (next < files.length) {
      const m = files[next++];
      const dest = join(realRoot, m.path);
      if (await sameFile(realRoot, dest, m)) {
        await utimes(dest, m.mtime, m.mtime);
        opts.delta.kept++;
        opts.delta.bytesSkipped += m.size;
        stats.files++;
        stats.bytes += m.size;
        stats.written.set(m.path, { size: m.size, crc32c: m.crc32c! });
      } else wanted.push(m);
    }
  };
  await Promise.all(Array.from({ length: COMPARE_WIDTH }, compare));
  wanted.sort((a, b) => a.header - b.header);
  for (const m of wanted) wantedPaths.add(m.path);
  for (const run of runsOf(wanted)) {
    const body = await store.get(o.key, { start: run.from, end: run.to - 1 });
    opts.delta.rangedReads++;
    const part = await extractTar(
      [body, opts.counter(), ...decodeStreams(o, opts.age, o.key), tarSlice(run.first.header - run.restart, run.last.end - run.first.header)],
      realRoot,
      o.key,
      { accept: (path) => wantedPaths.has(path), delta: opts.delta, onFile: opts.onFile },
    );
    stats.files += part.files;
    stats.bytes += part.bytes;
    for (const [path, f] of part.written) stats.written.set(path, f);
    for (const d of part.directories) stats.directories.add(d);
  }
  return stats;
}
