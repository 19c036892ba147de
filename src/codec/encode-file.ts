/**
 * One file turned into the bytes an object store keeps, streamed in chunks of at most CHUNK bytes:
 * read, compressed, age-encrypted, hashed (S3's Content-MD5) and, when anything transformed the
 * bytes, written to a spill file, so that the stored form has a known length and digest before
 * its upload starts (a single PUT needs both up front) while memory holds only a few chunks. The
 * compression worker runs it off the daemon's event loop; the in-process fallback runs it inline.
 * FileBody then streams that file into the upload from reused chunks.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ClientRequest } from 'node:http';
import { PassThrough, Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { count } from '../io/count.js';
import { cryptoHasher, hash, type Hasher } from '../io/hash.js';
import type { AgeKeys } from './age.js';
import { encoderConsumesInputAtCallback, type CodecName } from './types.js';
import { youngCollector } from '../util/gc.js';

/** The largest buffer a file read holds: what a WAL push keeps per stage instead of a whole segment. */
export const CHUNK = 256 * 1024;

/**
 * CHUNK-sized buffers handed back after use, so that reading a segment (to hash it, to upload it)
 * allocates nothing. A fresh chunk per read made 32 MiB of dead Buffers per segment, and the
 * memory budget's collector answers every 8 MiB of them with a full collection (util/gc.ts): in
 * the sidecar that was a third of its CPU per segment. At most SPARE_CHUNKS (2 MiB) stay idle.
 */
const spare: Buffer[] = [];
const SPARE_CHUNKS = 8;
const takeChunk = (): Buffer => spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
const giveBack = (buf: Buffer): void => {
  if (spare.length < SPARE_CHUNKS) spare.push(buf);
};

/**
 * Bytes of chunks read or produced between young-generation collections while a file encodes
 * (util/gc.ts youngCollector). zstd-napi pushes each output piece as a view of a fresh 128
 * KiB Buffer, zlib of a fresh 64 KiB one: 16 MiB of dead Buffers per zstd segment, which the
 * compression worker's collector (a full collection at most every 200 ms) let reach 9 MiB. Scavenging
 * every 2 MiB kept them under 2 MiB, at no measurable CPU (docs/wal-archiving.md).
 */
const SCAVENGE_EVERY = 2 * 1024 * 1024;

export interface EncodeJob {
  codec: CodecName;
  path: string;
  /** Compute the base64 MD5 of the stored bytes. */
  md5: boolean;
  /** Encrypt the compressed bytes for these keys' recipients (the .age form). */
  age?: AgeKeys;
  /** Where the stored bytes go when codec or age transforms them; created exclusively, 0600. */
  spillTo: string;
}

export interface EncodedFile {
  /** The file holding exactly the bytes to store: the source itself when nothing transforms it, else the spill file. */
  bodyPath: string;
  bodyLength: number;
  md5?: string;
  /** Size of the source file. */
  size: number;
  /** The largest chunk read or produced (0 when the file was not read): tests assert the bound. */
  largestChunk: number;
}

/** Whether a file is stored as it is (then no spill file is written). */
export function storedAsIs(codec: CodecName, age: AgeKeys | undefined): boolean {
  return codec === 'none' && !age;
}

/**
 * Whether encoding a file is worth a worker thread: not when it is stored as it is (an MD5 pass at
 * most) or gzip-compressed, which Node deflates on libuv's thread pool; the other codecs and age
 * encryption run on the calling thread.
 */
export function encodingNeedsWorker(codec: CodecName, age: AgeKeys | undefined): boolean {
  return age !== undefined || (codec !== 'none' && codec !== 'gzip');
}

export async function encodeFile(job: EncodeJob): Promise<EncodedFile> {
  const asIs = storedAsIs(job.codec, job.age);
  if (asIs && !job.md5) {
    const { size } = await stat(job.path);
    return { bodyPath: job.path, bodyLength: size, size, largestChunk: 0 };
  }
  if (asIs) return hashAsIs(job.path, cryptoHasher('md5', 'base64'));
  let largestChunk = 0;
  const scavenge = youngCollector(SCAVENGE_EVERY);
  const note = (n: number) => {
    largestChunk = Math.max(largestChunk, n);
    scavenge(n);
  };
  const { encoder, consumesInput } = await encoderFor(job);
  const digest = hash(job.md5 ? cryptoHasher('md5', 'base64') : { update: () => undefined, digest: () => '' });
  const body = count(note);
  const sink = createWriteStream(job.spillTo, { flags: 'wx', mode: 0o600 });
  if (consumesInput) {
    // The encoder is done with each chunk at its write callback: the file goes in through reused
    // chunks, 16 MiB less garbage per WAL segment (in the WAL daemon, a third of its collections).
    const source = new FileBody(job.path);
    await Promise.all([source.feed(encoder, note), pipeline([encoder, digest, body, sink])]);
    return { bodyPath: job.spillTo, bodyLength: body.bytes, md5: job.md5 ? digest.digest : undefined, size: source.bytesRead, largestChunk };
  }
  const source = count(note);
  await pipeline([createReadStream(job.path, { highWaterMark: CHUNK }), source, encoder, digest, body, sink]);
  return { bodyPath: job.spillTo, bodyLength: body.bytes, md5: job.md5 ? digest.digest : undefined, size: source.bytes, largestChunk };
}

/**
 * zstd's level for files encoded here (WAL segments), chosen as gzip's (encode-gzip.ts) and
 * pgBackRest's compress-level defaults are: where more CPU stops buying size. On the WAL bench's
 * segments (PostgreSQL 15, pgbench + md5 text; docs/wal-archiving.md "zstd level 1 for WAL")
 * level 1 took 51 ms of CPU per 16 MiB segment and stored 2.82:1, level 3 (libzstd's default,
 * which backups keep) 158-161 ms for 2.60:1: on WAL's many short matches level 3's longer search
 * costs three times the CPU and finds nothing better. Level 3 was most of a compressed push's cost
 * in the WAL daemon.
 */
export const WAL_ZSTD_LEVEL = 1;

/**
 * Each in-process codec's encoder, its module imported when a job first needs it and alone:
 * streams.ts brings every codec's native module (snappy's, lz4's, zstd's, each with its own
 * allocator), which a compression worker that runs one codec, or a daemon that deflates gzip on its
 * own thread, would carry for nothing (docs/wal-archiving.md). lz4 compresses on the job's own
 * thread, as the others do, not on libuv's pool (Lz4FrameEncoder onThread). bzip2 and xz (programs)
 * come from streams.ts.
 */
const ENCODERS: Partial<Record<CodecName, () => Promise<Transform>>> = {
  none: async () => new PassThrough(),
  gzip: async () => (await import('./encode-gzip.js')).gzipEncoder(),
  zstd: async () => new (await import('./encode-zstd.js')).ZstdEncoder(WAL_ZSTD_LEVEL),
  snappy: async () => new (await import('./snappy-framing.js')).SnappyFrameEncoder(),
  lz4: async () => new (await import('./lz4.js')).Lz4FrameEncoder(true),
};

/** The job's encoder, and whether it is done with each input chunk at its write callback. */
async function encoderFor(job: EncodeJob): Promise<{ encoder: Transform; consumesInput: boolean }> {
  const load = ENCODERS[job.codec] ?? (async () => (await import('./streams.js')).compressStream(job.codec));
  const compress = await load();
  // age's encryption keeps pieces of its input for a 64 KiB chunk.
  if (job.age) return { encoder: (await import('./age.js')).encryptStream(job.age, compress), consumesInput: false };
  return { encoder: compress, consumesInput: encoderConsumesInputAtCallback(job.codec) };
}

/** The MD5 of a file stored as it is, read into one reused chunk refilled in place. */
async function hashAsIs(path: string, md5: Hasher<string>): Promise<EncodedFile> {
  const buf = takeChunk();
  const file = await open(path, 'r');
  let size = 0;
  let largestChunk = 0;
  try {
    for (let n; (n = (await file.read(buf, 0, CHUNK, size)).bytesRead) > 0; size += n) {
      md5.update(buf.subarray(0, n));
      largestChunk = Math.max(largestChunk, n);
    }
  } finally {
    await file.close();
    giveBack(buf);
  }
  return { bodyPath: path, bodyLength: size, md5: md5.digest(), size, largestChunk };
}

/**
 * A file as an upload body, read in CHUNK-sized pieces. Piped into an HTTP request (what the S3
 * SDK does with a stream body) it writes reused chunks itself and takes a chunk back only from
 * its write callback, when the socket no longer holds it: two or three chunks per upload, no
 * garbage. Read any other way (Azure's block stager, the file store, a Transform that may keep a
 * chunk after its write callback), it is an ordinary stream of fresh chunks.
 */
export class FileBody extends Readable {
  private file?: Promise<FileHandle>;
  private position = 0;
  /** Whether the reused-chunk path served it (tests assert it is the one the S3 upload takes). */
  reusedChunks = false;

  constructor(private readonly path: string) {
    super({ highWaterMark: CHUNK });
  }

  private handle(): Promise<FileHandle> {
    return (this.file ??= open(this.path, 'r'));
  }

  /** Reads the next piece into buf; 0 at the end of the file. */
  private async readInto(buf: Buffer): Promise<number> {
    const { bytesRead } = await (await this.handle()).read(buf, 0, CHUNK, this.position);
    this.position += bytesRead;
    return bytesRead;
  }

  override _read(): void {
    const buf = Buffer.allocUnsafe(CHUNK);
    this.readInto(buf).then(
      (n) => this.push(n > 0 ? buf.subarray(0, n) : null),
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const file = this.file;
    this.file = Promise.reject(new Error(`${this.path}: read after the body was closed`));
    this.file.catch(() => undefined);
    if (!file) return cb(err);
    file.then((f) => f.close()).then(() => cb(err), () => cb(err));
  }

  /** Bytes read from the file so far. */
  get bytesRead(): number {
    return this.position;
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    if (!(dest instanceof ClientRequest) || this.position > 0 || this.readableFlowing !== null || opts?.end === false) return super.pipe(dest, opts);
    void this.feed(dest);
    return dest;
  }

  /**
   * Writes the whole file into dest and ends it, the next chunk read while the last one is
   * written; dest is destroyed if the file fails. Only for a dest done with each chunk at its write
   * callback (a socket, a consuming encoder): that callback takes the chunk back for the next read.
   */
  async feed(dest: Writable, onChunk?: (bytes: number) => void): Promise<void> {
    this.reusedChunks = true;
    const readChunk = async (): Promise<[Buffer, number]> => {
      const buf = takeChunk();
      try {
        return [buf, await this.readInto(buf)];
      } catch (err) {
        giveBack(buf);
        throw err;
      }
    };
    try {
      let next = readChunk();
      for (;;) {
        const [buf, n] = await next;
        if (n === 0 || dest.destroyed) {
          giveBack(buf);
          break;
        }
        onChunk?.(n);
        next = readChunk();
        next.catch(() => undefined);
        // The socket may still hold the bytes when write() returns; the callback says it is done with them.
        if (!dest.write(buf.subarray(0, n), () => giveBack(buf))) await drained(dest);
      }
      if (!dest.destroyed) dest.end();
    } catch (err) {
      dest.destroy(err as Error);
    } finally {
      this.destroy();
    }
  }
}

/** Resolves once dest drains or is gone. */
function drained(dest: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      dest.off('drain', done).off('close', done);
      resolve();
    };
    dest.on('drain', done).on('close', done);
  });
}
