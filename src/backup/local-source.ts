/**
 * A backup of a server on this host: pg_backup_start / pg_backup_stop (non-exclusive, one session
 * held open for the whole copy, so a killed pgark makes the server abort the backup) while the
 * data directory and tablespaces are read straight from disk, with barman's exclusions.
 */
import { lstat, open, readdir, readlink, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { BackupSource, BackupStart, BackupStop, ServerFacts, SourceArchive, SourceEntry } from './types.js';
import { pgdataFilter, tablespaceFilter, type PathFilter } from './exclusions.js';
import { UserError } from '../util/errors.js';
import { BufferLender } from '../io/lent.js';

const READ_CHUNK = 1024 * 1024;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Reads a file as it is now, for `size` bytes: a file that shrank after its size was taken is
 * zero-padded and one that grew is cut, as barman does (WAL replay repairs both). Chunks are
 * lent from `buffers`: the tar's compressor copies them and hands them back (codec/blocks.ts).
 */
async function* fileBody(path: string, size: number, buffers: BufferLender): AsyncIterable<Uint8Array> {
  let sent = 0;
  if (size > 0) {
    let file: FileHandle | undefined;
    try {
      file = await open(path, 'r');
      while (sent < size) {
        const buf = buffers.take(size - sent);
        const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, size - sent), sent);
        if (bytesRead === 0) break;
        sent += bytesRead;
        yield buffers.lend(buf, bytesRead);
      }
    } catch (err) {
      if (!isMissing(err)) throw err;
    } finally {
      await file?.close();
    }
  }
  while (sent < size) {
    const n = Math.min(READ_CHUNK, size - sent);
    sent += n;
    yield Buffer.alloc(n);
  }
}

/**
 * Read buffers a backup keeps for reuse: about what the tar stream's queues hold between the reader
 * and the compressor, so that few are allocated anew. They go with the backup (one lender each).
 */
const KEPT_READ_BUFFERS = 4;

function bodies(path: string, size: number, buffers: BufferLender): { body: AsyncIterable<Uint8Array>; reopen: () => AsyncIterable<Uint8Array> } {
  return { body: fileBody(path, size, buffers), reopen: () => fileBody(path, size, buffers) };
}

/** Top-down walk (a directory before its content, names sorted); vanished entries are skipped. */
async function* walk(root: string, rel: string, filter: PathFilter, buffers: BufferLender): AsyncIterable<SourceEntry> {
  const abs = rel ? join(root, rel) : root;
  let st;
  try {
    st = await lstat(abs);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  yield { type: 'directory', path: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
  let names: string[];
  try {
    names = (await readdir(abs)).sort();
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  const subdirs: string[] = [];
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    if (!filter.allows(path)) continue;
    let est;
    try {
      est = await lstat(join(root, path));
    } catch (err) {
      if (isMissing(err)) continue;
      throw err;
    }
    if (est.isDirectory()) subdirs.push(path);
    else if (est.isFile()) yield { type: 'file', path, mode: est.mode & 0o7777, mtime: est.mtime, uid: est.uid, gid: est.gid, size: est.size, ...bodies(join(root, path), est.size, buffers) };
    else if (est.isSymbolicLink()) {
      // Like barman (os.walk without followlinks): a link to a directory, such as pg_wal on another
      // volume, is not stored; a link to a file is stored as a link.
      const target = await stat(join(root, path)).catch(() => undefined);
      if (target?.isDirectory()) continue;
      yield { type: 'symlink', path, mode: est.mode & 0o7777, mtime: est.mtime, uid: est.uid, gid: est.gid, linkname: await readlink(join(root, path)) };
    }
  }
  for (const d of subdirs) yield* walk(root, d, filter, buffers);
}

async function* pgdataEntries(facts: ServerFacts, filter: PathFilter, buffers: BufferLender): AsyncIterable<SourceEntry> {
  yield* walk(facts.pgdata, '', filter, buffers);
  // barman copies pg_control last, after every other file: it must be newer than the data it describes.
  const path = 'global/pg_control';
  const st = await stat(join(facts.pgdata, path));
  yield { type: 'file', path, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid, size: st.size, ...bodies(join(facts.pgdata, path), st.size, buffers) };
}

export class LocalSource implements BackupSource {
  readonly method = 'local' as const;
  private readonly buffers = new BufferLender(READ_CHUNK, KEPT_READ_BUFFERS);

  constructor(
    private readonly client: pg.Client,
    private readonly facts: ServerFacts,
    private readonly pgdata: string,
  ) {}

  async start(label: string, fast: boolean): Promise<BackupStart> {
    await stat(join(this.pgdata, 'PG_VERSION')).catch(() => {
      throw new UserError(`${this.pgdata} is not a PostgreSQL data directory readable by pgark`, 'pass --pgdata pointing at the server\'s data directory, or use --method remote');
    });
    const fn = this.facts.major >= 15 ? 'pg_backup_start($1, $2)' : 'pg_start_backup($1, $2, false)';
    const r = await this.client.query<{ lsn: string; tli: number; now: Date }>(
      `SELECT ${fn}::text AS lsn, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli, now() AS now`,
      [label, fast],
    );
    const row = r.rows[0];
    return { lsn: row.lsn, timeline: Number(row.tli), time: row.now };
  }

  async *archives(): AsyncIterable<SourceArchive> {
    const inside = this.facts.tablespaces
      .filter((t) => t.location.startsWith(this.facts.pgdata + '/'))
      .map((t) => t.location.slice(this.facts.pgdata.length + 1));
    for (const t of this.facts.tablespaces) {
      yield { name: String(t.oid), entries: walk(t.location, '', tablespaceFilter(this.facts.major), this.buffers) };
    }
    const filter = pgdataFilter(
      this.facts.tablespaces.map((t) => t.oid),
      inside,
    );
    yield { name: 'data', entries: pgdataEntries({ ...this.facts, pgdata: this.pgdata }, filter, this.buffers) };
  }

  async stop(): Promise<BackupStop> {
    const fn = this.facts.major >= 15 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
    const r = await this.client.query<{ lsn: string; labelfile: string; tli: number; now: Date }>(
      `SELECT lsn::text AS lsn, labelfile, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli, now() AS now FROM ${fn}`,
    );
    const row = r.rows[0];
    return { lsn: row.lsn, labelFile: row.labelfile, timeline: Number(row.tli), time: row.now };
  }

  async close(): Promise<void> {
    // The session belongs to the runner; ending it is what aborts an unfinished backup.
  }
}
