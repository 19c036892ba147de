/**
 * Fetching one WAL file from the archive for restore_command. Looks up the exact name with any
 * known compression suffix (never a .partial or .backup object for a plain segment name),
 * decompresses, writes to a temp file in the target directory, checks that the bytes can be what
 * the name says, and renames it into place, so a kill at any point leaves either nothing or the
 * complete, checked file under its final name.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArrayBufferShelf, BlockAccumulator } from '../codec/blocks.js';
import { CorruptDataError } from '../codec/errors.js';
import { parseHistoryFile } from '../pg/history.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { youngCollector } from '../util/gc.js';
import { logger } from '../util/log.js';
import { findStoredWal, type ArchivedWalIndex, type StoredWal } from './stored-wal.js';
import { classifyWalName, parseWalName, type ParsedWalName } from '../pg/wal-names.js';
import { ABORT_RECOVERY_EXIT, ABORT_RECOVERY_MARK } from './restore-exit.js';
import { LONG_HEADER_SIZE, readSegmentHeader, segmentContentProblem } from './segment.js';
import type { WalTarget } from './target.js';

/** A WAL object that exists but cannot be the file its name says: PostgreSQL must not end the recovery on it. */
export class DamagedWalError extends PgarkError {
  constructor(object: string, problem: string) {
    super(
      `${ABORT_RECOVERY_MARK} WAL object ${object} is damaged: ${problem}`,
      ABORT_RECOVERY_EXIT,
      'restore_command failed so that PostgreSQL stops instead of promoting on partial data; restore the object from another copy, or set a recovery target before it',
    );
  }
}

/** Why a history file's text cannot be the history of its timeline, or undefined when it can. */
function historyProblem(name: string, wal: ParsedWalName, text: string): string | undefined {
  try {
    const entries = parseHistoryFile(text, name);
    if (entries.length === 0) return 'it lists no parent timeline';
    const late = entries.find((e) => e.timeline >= wal.timeline);
    return late ? `it lists timeline ${late.timeline} as an ancestor of timeline ${wal.timeline}` : undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

async function contentProblem(name: string, path: string, file: WalFileWriter): Promise<string | undefined> {
  const wal = parseWalName(name);
  if (wal.kind === 'segment' || wal.kind === 'partial') return segmentContentProblem(wal.base, file.bytes, readSegmentHeader(file.head));
  if (wal.kind === 'history') return historyProblem(name, wal, await readFile(path, 'utf8'));
  return undefined;
}

/**
 * Decoded-output buffers kept between segments. Each segment used to leave 16 MiB of dead 128 KiB
 * Buffers behind, which the daemon's collector (util/gc.ts) then freed with a full collection
 * every 4 MiB; one lane holds only a few at once (the decoder's and the file's backpressure).
 */
// 128 KiB: what both decoders that take output buffers ask for (zstd's dStreamOutSize, snappy's
// SNAPPY_OUT_SIZE), written out because importing either would load its native module with this
// one (test/wal/restore-fetch.test.ts fails if the buffers stop being reused).
const outputBuffers = new ArrayBufferShelf(128 * 1024, 16);
/** What a WAL file's writer gathers before it writes (per fetch lane): 16 TLS records, 2 decoded buffers. */
export const GATHERED_WRITE = 256 * 1024;
/** The writers' blocks, one per fetch lane at a time. */
const gatherBuffers = new ArrayBufferShelf(GATHERED_WRITE, 8);
/** Decoded bytes between scavenges: a zstd WAL segment's response is about a third of them. */
const SCAVENGE_EVERY = 4 * 1024 * 1024;
/** The buffers handed to decoders and not back yet: only these go back to the shelf. */
const lentBuffers = new WeakSet<ArrayBufferLike>();

/** How many decoded-output buffers this process has allocated (what a test can observe). */
export function walOutputBuffersMade(): number {
  return outputBuffers.made;
}

function outputBuffer(size: number): Buffer {
  const buf = Buffer.from(outputBuffers.take(size));
  lentBuffers.add(buf.buffer);
  return buf;
}

/**
 * The temp file a WAL file is decoded into: counts its bytes, keeps its first page header for the
 * check, and gives each decoded buffer back once its bytes are copied (so no second read of the
 * file and no dead buffers per segment).
 *
 * The chunks are copied into blocks of GATHERED_WRITE bytes (BlockAccumulator), each written at
 * once: an uncompressed segment comes as TLS records of at most 16 KiB, and a thread-pool write for
 * each one cost about 0.4 CPU s per 128 MiB, on the cores the restore's data step and PostgreSQL's
 * replay need (docs/measurements/recovery-time.md, "The WAL daemon's CPU"). Copied, not held: a
 * record is a slice of a larger socket buffer, and holding 512 KiB of them per lane kept 10-17 MiB
 * more of the daemon resident at 8 lanes; a decoder's buffer goes back as soon as it is copied.
 * Holding bytes back is safe: the file is renamed into place only once complete and checked.
 */
class WalFileWriter extends Writable {
  bytes = 0;
  head = Buffer.alloc(0);
  private file?: FileHandle;
  private readonly blocks = new BlockAccumulator(GATHERED_WRITE, () => Buffer.from(gatherBuffers.take(GATHERED_WRITE)));
  /** The response's chunks die young: a scavenge frees them before they add up to a full collection (util/gc.ts). */
  private readonly scavenge = youngCollector(SCAVENGE_EVERY);

  constructor(private readonly path: string) {
    super();
  }

  override _construct(callback: (err?: Error | null) => void): void {
    open(this.path, 'wx', 0o600).then((f) => {
      this.file = f;
      callback();
    }, callback);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.head.length < LONG_HEADER_SIZE) this.head = Buffer.concat([this.head, chunk.subarray(0, LONG_HEADER_SIZE - this.head.length)]);
    const full = this.blocks.add(chunk);
    this.bytes += chunk.length;
    this.scavenge(chunk.length);
    if (lentBuffers.delete(chunk.buffer)) outputBuffers.give(chunk.buffer as ArrayBuffer);
    this.writeBlocks(full).then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    const rest = this.blocks.rest();
    this.writeBlocks(rest ? [rest] : [])
      .then(() => {
        const file = this.file;
        this.file = undefined;
        return file!.close();
      })
      .then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const file = this.file;
    this.file = undefined;
    if (!file) return callback(err);
    file.close().then(() => callback(err), () => callback(err));
  }

  /** Writes each block whole (a write may be short: a full disk, a signal), then hands its buffer back. */
  private async writeBlocks(blocks: Buffer[]): Promise<void> {
    for (const block of blocks) {
      for (let done = 0; done < block.length; ) done += (await this.file!.write(block, done, block.length - done)).bytesWritten;
      gatherBuffers.give(block.buffer as ArrayBuffer);
    }
  }
}

/**
 * Writes WAL file `name` to `dest`; resolves with its size. Throws NotFoundError when absent and
 * DamagedWalError when the stored object does not decode to a file that fits its name.
 * With `index` (the daemon's prefetch), a name its folder listing holds is fetched without a LIST
 * of its own; "absent" is only ever said after a LIST of the name itself, so an old listing can
 * never end replay early, and a listed object gone since is looked up again.
 */
export async function fetchWalFile(target: WalTarget, name: string, dest: string, index?: ArchivedWalIndex): Promise<number> {
  if (!classifyWalName(name)) throw new UserError(`"${name}" is not a WAL file name`, 'restore_command must pass %f %p', 3);
  const listed = index && (await index.find(target.store, target.serverName, name).catch(() => undefined));
  if (listed) {
    try {
      return await fetchStoredWal(target, name, dest, listed, 0);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      index.forget(target.store, listed.key);
    }
  }
  const t0 = performance.now();
  const found = await findStoredWal(target.store, target.serverName, name);
  if (!found) throw new NotFoundError(`WAL file ${name} not found in ${target.description}`);
  return fetchStoredWal(target, name, dest, found, performance.now() - t0);
}

async function fetchStoredWal(target: WalTarget, name: string, dest: string, found: StoredWal, lookupMs: number): Promise<number> {
  const t1 = performance.now();
  const object = `${found.key} in ${target.description}`;
  const temp = join(dirname(dest), `.${name}.pgark-tmp-${randomBytes(4).toString('hex')}`);
  const { decodeStreams } = await import('../codec/index.js');
  const source = await target.store.get(found.key);
  const decoders = decodeStreams(found, target.age, object, { outputBuffer });
  const file = new WalFileWriter(temp);
  try {
    try {
      await pipeline([source, ...decoders, file]);
    } catch (err) {
      // Transport failures are retried and resumed below this; what reaches here undecoded is the stored bytes.
      if (err instanceof CorruptDataError) throw new DamagedWalError(object, err.message);
      throw err;
    }
    const t2 = performance.now();
    const problem = await contentProblem(name, temp, file);
    if (problem) throw new DamagedWalError(object, problem);
    await rename(temp, dest);
    // Where a segment's time goes (PGARK_LOG_LEVEL=debug): the lookup, then GET + decode + write as one stream, then the check.
    logger().debug({ wal: name, lookupMs: Math.round(lookupMs), transferMs: Math.round(t2 - t1), checkMs: Math.round(performance.now() - t2), bytes: file.bytes }, 'WAL file fetched');
    return file.bytes;
  } catch (err) {
    // The temp file is created as the writer starts: only once it closed is it sure to be there to remove.
    if (!file.closed) await new Promise((resolve) => file.once('close', resolve));
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
