/**
 * Reads one stored tar of a backup back, end to end, without writing anything: the stored bytes
 * are hashed (SHA-256) as they arrive, decoded by the key's suffixes (decrypted, decompressed), and parsed as a tar, so every
 * header and its checksum is read and every member's size and CRC-32C computed. Nothing is held
 * but stream buffers and the backup_manifest member's text.
 *
 * tar-stream skips zero blocks, so a tar cut exactly between two members would parse cleanly: the
 * decoded stream must also be a whole number of 512-byte blocks ending in the two zero blocks
 * that close every tar (tar-stream's, barman-cloud's and GNU tar's writers all write them).
 */
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { decodeStreams, type AgeKeys, type StoredForm } from '../codec/index.js';
import { cryptoHasher, hash, Crc32c } from '../io/hash.js';
import { BACKUP_MANIFEST, type FileDigest } from '../pg/backup-manifest.js';
import type { ObjectStore } from '../storage/types.js';

const BLOCK = 512;
const END_OF_ARCHIVE = 2 * BLOCK;

export interface ObjectRead {
  entries: number;
  /** Regular files by path relative to the tar's root. */
  files: Map<string, FileDigest>;
  /** The backup_manifest member, when the tar holds one. */
  manifest?: string;
  /** SHA-256 (hex) of the stored bytes; undefined when reading stopped early. */
  sha256?: string;
  /** Why the object is damaged, when it is. */
  problem?: string;
}

/** Keeps the last END_OF_ARCHIVE bytes and the length of the decoded stream. */
function tailTap(): { tap: Transform; ending(): { length: number; tail: Buffer } } {
  let tail: Buffer = Buffer.alloc(0);
  let length = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      length += chunk.length;
      // A copy: the tail must not pin the whole chunk it was cut from.
      tail = Buffer.from(Buffer.concat([tail, chunk.subarray(-END_OF_ARCHIVE)]).subarray(-END_OF_ARCHIVE));
      cb(null, chunk);
    },
  });
  return { tap, ending: () => ({ length, tail }) };
}

function memberPath(name: string): string {
  return name
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}

async function consume(body: Readable, keepText: boolean): Promise<{ digest: FileDigest; text?: string }> {
  const crc = new Crc32c();
  let size = 0;
  const kept: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) {
    crc.update(chunk);
    size += chunk.length;
    if (keepText) kept.push(chunk);
  }
  return { digest: { size, crc32c: crc.digest() }, text: keepText ? Buffer.concat(kept).toString('utf8') : undefined };
}

/** Reads `key` (a tar stored in `form`, decrypted with `age`); `count` sees every stored byte, for progress. */
export async function readBackupObject(store: ObjectStore, key: string, form: StoredForm, age: AgeKeys | undefined, count: Transform): Promise<ObjectRead> {
  const result: ObjectRead = { entries: 0, files: new Map() };
  const sha = hash(cryptoHasher('sha256'));
  const ending = tailTap();
  const extractor = tarExtract();
  let stages: Readable[] = [];
  try {
    stages = [await store.get(key), sha, count, ...decodeStreams(form, age, key), ending.tap];
  } catch (err) {
    return { ...result, problem: `it cannot be read: ${(err as Error).message}` };
  }
  const feeding = pipeline([...stages, extractor]);
  // A decoder that fails mid-member leaves that member's stream open: the read races the failure.
  feeding.catch(() => undefined);
  const broken = feeding.then(() => new Promise<never>(() => undefined));
  broken.catch(() => undefined);
  try {
    for await (const entry of extractor) {
      result.entries++;
      const body = entry as unknown as Readable;
      const path = memberPath(entry.header.name);
      const isFile = entry.header.type === 'file' || entry.header.type === 'contiguous-file';
      const read = await Promise.race([consume(body, isFile && path === BACKUP_MANIFEST), broken]);
      if (isFile) result.files.set(path, read.digest);
      if (read.text !== undefined) result.manifest = read.text;
    }
    await feeding;
  } catch (err) {
    for (const s of stages) s.destroy();
    extractor.destroy();
    await feeding.catch(() => undefined);
    return { ...result, problem: describeFailure(err) };
  }
  result.sha256 = sha.digest;
  const { length, tail } = ending.ending();
  if (length % BLOCK !== 0) result.problem = `the decoded tar is ${length} bytes, not a whole number of 512-byte blocks: it is truncated`;
  else if (length < END_OF_ARCHIVE || tail.some((b) => b !== 0)) result.problem = 'the tar does not end with the two zero blocks that close an archive: it is truncated';
  return result;
}

/** tar-stream's errors are plain Errors ("Invalid tar header...", "Unexpected end of data"); a codec's are CorruptDataError. */
function describeFailure(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  return /tar|end of data|header/i.test(message) && !/cannot be decoded/.test(message) ? `the tar cannot be read: ${message}` : message;
}
