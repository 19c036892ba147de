/**
 * One file turned into the bytes an object store keeps, streamed in chunks of at most CHUNK bytes:
 * read, compressed, age-encrypted, hashed (S3's Content-MD5) and, when anything transformed the
 * bytes, written to a spill file, so that the stored form has a known length and digest before
 * its upload starts (a single PUT needs both up front) while memory holds only a few chunks. The
 * compression worker runs it off the daemon's event loop; the in-process fallback runs it inline.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { count } from '../io/count.js';
import { cryptoHasher, hash, type Hasher } from '../io/hash.js';
import type { AgeKeys } from './age.js';
import { compressStream } from './streams.js';
import type { CodecName } from './types.js';
import { encodeStream } from './index.js';

/** The largest buffer a file read holds: what a WAL push keeps per stage instead of a whole segment. */
export const CHUNK = 256 * 1024;

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

export async function encodeFile(job: EncodeJob): Promise<EncodedFile> {
  const asIs = storedAsIs(job.codec, job.age);
  if (asIs && !job.md5) {
    const { size } = await stat(job.path);
    return { bodyPath: job.path, bodyLength: size, size, largestChunk: 0 };
  }
  if (asIs) return hashAsIs(job.path, cryptoHasher('md5', 'base64'));
  let largestChunk = 0;
  const note = (n: number) => (largestChunk = Math.max(largestChunk, n));
  const source = count(note);
  const digest = hash(job.md5 ? cryptoHasher('md5', 'base64') : { update: () => undefined, digest: () => '' });
  const body = count(note);
  const sink = createWriteStream(job.spillTo, { flags: 'wx', mode: 0o600 });
  await pipeline([createReadStream(job.path, { highWaterMark: CHUNK }), source, encodeStream(compressStream(job.codec), job.age), digest, body, sink]);
  return { bodyPath: job.spillTo, bodyLength: body.bytes, md5: job.md5 ? digest.digest : undefined, size: source.bytes, largestChunk };
}

/**
 * The MD5 of a file stored as it is, read into one CHUNK-sized buffer refilled in place: a
 * stream would allocate a fresh chunk per read, 16 MiB of garbage per segment hashed, which the
 * WAL daemon makes at maxParallel times the store's rate.
 */
async function hashAsIs(path: string, md5: Hasher<string>): Promise<EncodedFile> {
  const buf = Buffer.allocUnsafe(CHUNK);
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
  }
  return { bodyPath: path, bodyLength: size, md5: md5.digest(), size, largestChunk };
}
