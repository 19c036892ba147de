/**
 * Digests over bytes as they pass: MD5 (S3's Content-MD5), SHA-256 (logical dumps), CRC-32C
 * (backup_manifest). A Hasher is the bare state, for code that already holds the bytes (the
 * compression worker hashes a whole body on its own thread, the archive writer each tar member);
 * HashFilter is the same in a pipeline, its digest readable once the stream ended.
 */
import { createHash, type BinaryToTextEncoding } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type * as Crc32Module from '@node-rs/crc32';
import { lazyRequire } from '../util/lazy-require.js';

/**
 * @node-rs/crc32, required on first use: about 9 MiB resident per process (and again per worker
 * isolate), which the processes that hash only MD5 or SHA-256 (the WAL daemon and its compression
 * worker) would carry for nothing.
 */
const crc32Module = lazyRequire<typeof Crc32Module>('@node-rs/crc32');

function crc32c(chunk: Uint8Array, initial?: number): number {
  return crc32Module().crc32c(chunk, initial);
}

export interface Hasher<T> {
  update(chunk: Uint8Array): void;
  /** The digest of every byte given so far; call once, at the end. */
  digest(): T;
}

/** Incremental CRC-32C (Castagnoli), as PostgreSQL's backup_manifest and snappy framing use it. */
export class Crc32c implements Hasher<number> {
  private value = 0;
  update(chunk: Uint8Array): void {
    this.value = crc32c(chunk, this.value);
  }
  digest(): number {
    return this.value >>> 0;
  }
}

export type CryptoAlgorithm = 'md5' | 'sha256';

/** MD5 or SHA-256 as text: hex (what sidecars record) or base64 (what Content-MD5 wants). */
export function cryptoHasher(algorithm: CryptoAlgorithm, encoding: BinaryToTextEncoding = 'hex'): Hasher<string> {
  const h = createHash(algorithm);
  return { update: (chunk) => void h.update(chunk), digest: () => h.digest(encoding) };
}

/** Digest of one buffer. */
export function digestOf(algorithm: CryptoAlgorithm, data: Uint8Array, encoding: BinaryToTextEncoding = 'hex'): string {
  const h = cryptoHasher(algorithm, encoding);
  h.update(data);
  return h.digest();
}

export interface HashFilterOptions<T> {
  /** Returns an error to fail the stream before its end reaches the consumer (a digest that does not match). */
  check?: (digest: T) => Error | undefined;
}

/** Passes bytes through unchanged while hashing them. */
export class HashFilter<T> extends Transform {
  private result: { value: T } | undefined;

  constructor(
    private readonly hasher: Hasher<T>,
    private readonly opts: HashFilterOptions<T> = {},
  ) {
    super();
  }

  /** The digest; throws before the stream ended, as a digest of part of the bytes would be wrong. */
  get digest(): T {
    if (!this.result) throw new Error('the digest is read before the stream ended');
    return this.result.value;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hasher.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = { value: this.hasher.digest() };
    cb(this.opts.check?.(this.result.value));
  }
}

export function hash<T>(hasher: Hasher<T>, opts?: HashFilterOptions<T>): HashFilter<T> {
  return new HashFilter(hasher, opts);
}

/** Zero bytes after an embedded CRC-32C that selfCheckedCrcs covers: pg_control has 7904. */
const MAX_CRC_PADDING = 64 * 1024;
let selfChecked: Set<number> | undefined;

/**
 * The whole-file CRC-32C of every file that ends with the CRC-32C of what precedes it followed by
 * up to MAX_CRC_PADDING zero bytes: CRC(M || CRC(M)) is the same for every M (for the empty M,
 * whose CRC is 0, it is the CRC of four zero bytes), and each zero byte after it moves that
 * value the same way. A member with one of these CRCs may differ from a file with the same CRC.
 */
export function selfCheckedCrcs(): Set<number> {
  if (selfChecked) return selfChecked;
  const zero = new Uint8Array(1);
  let crc = crc32c(new Uint8Array(4));
  selfChecked = new Set([crc >>> 0]);
  for (let i = 0; i < MAX_CRC_PADDING; i++) {
    crc = crc32c(zero, crc);
    selfChecked.add(crc >>> 0);
  }
  return selfChecked;
}
