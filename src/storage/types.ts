import type { Readable } from 'node:stream';

/**
 * What a provider allows, declared by each driver so callers size parts and batches
 * without special-casing a provider (the idea of barman's CloudInterface limits).
 */
export interface StorageLimits {
  /** Smallest part of a multipart upload except the last one (S3: 5 MiB). */
  minPartSize: number;
  /** Largest single part/block. */
  maxPartSize: number;
  /** Most parts/blocks in one object (S3 10,000; Azure 50,000). */
  maxParts: number;
  /** Most keys in one batched delete (S3 1000; Azure 256). */
  deleteBatchSize: number;
  /** True when the provider can create an object only if absent, atomically. */
  conditionalCreate: boolean;
  /** True when put() metadata comes back from head()/list(). */
  metadata: boolean;
  /** True when put() tags are stored on the object. */
  tags: boolean;
}

export interface ObjectInfo {
  /** Key relative to the store's root (the destinationPath). */
  key: string;
  size: number;
  lastModified?: Date;
  metadata?: Record<string, string>;
}

/**
 * Memory: a streaming put() holds about partSize x queueSize bytes (S3 multipart parts / Azure
 * staged blocks in flight) plus up to two parts being assembled, so budget
 * partSize x (queueSize + 2) per concurrent upload, and N x that for N parallel uploads.
 * (S3 holds one part being filled besides those in flight, refilled rather than reallocated:
 * s3-multipart.ts.) Measured after GC with 16 MiB x 4: ~71 MiB (Azure uploadStream).
 * Downloads stream with socket backpressure (no whole-object buffering), except getBuffer(),
 * which is for small objects only.
 */
export interface PutOptions {
  /** Object tags (S3 tagging, Azure blob index tags). */
  tags?: Record<string, string>;
  /** User metadata (x-amz-meta-*, Azure metadata). Keys lower-case, values ASCII. */
  metadata?: Record<string, string>;
  contentType?: string;
  /** S3 server-side encryption (barmanObjectStore wal/data.encryption); Azure always encrypts at rest. */
  encryption?: 'AES256' | 'aws:kms';
  /** Base64 MD5 of a Buffer body, when the caller computed it already (else the driver does if it sends one). */
  contentMD5?: string;
  /**
   * The exact byte count of a stream body whose contentMD5 is given: S3 then stores it with one
   * streamed PUT (no multipart, no part buffers) instead of a multipart upload. Other drivers
   * ignore it.
   */
  contentLength?: number;
  /**
   * Makes the same stream body again from its first byte (the caller owns the file it comes
   * from): a streamed PUT whose request failed transiently is retried with it, since a consumed
   * stream cannot be sent twice. Without it such a PUT is tried once.
   */
  reopen?: () => Readable;
  /** Create only if absent; resolves to 'exists' instead of overwriting. */
  ifAbsent?: boolean;
  /** Part size for streaming uploads; clamped to the driver's limits. */
  partSize?: number;
  /** Expected total size of a stream body when known, so the part size can be raised to fit maxParts. */
  sizeHint?: number;
  /** Parts uploaded at once for one streaming object. */
  queueSize?: number;
  /** Called with the number of bytes stored so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface PutResult {
  status: 'created' | 'exists';
  size: number;
}

export interface GetOptions {
  /** First byte (inclusive). */
  start?: number;
  /** Last byte (inclusive). */
  end?: number;
  signal?: AbortSignal;
}

export interface ListEntry {
  /** Present for objects. */
  object?: ObjectInfo;
  /** Present for common prefixes ("directories") when a delimiter is used; ends with the delimiter. */
  prefix?: string;
}

export interface ListOptions {
  delimiter?: '/';
  /**
   * Only keys that sort after this one (byte order). S3 skips the rest on the server (StartAfter);
   * Azure and file:// filter them out on the client, which saves the transfer but not the walk.
   */
  startAfter?: string;
  signal?: AbortSignal;
}

/**
 * One interface for file://, S3 and Azure Blob. Keys are POSIX-style, relative to the
 * store root (the path part of destinationPath), never starting with '/'.
 */
export interface ObjectStore {
  /** The destination URL with credentials removed, safe to print. */
  readonly displayUrl: string;
  readonly provider: 'file' | 's3' | 'azure';
  readonly limits: StorageLimits;
  /** Stores a Buffer in one request, or a stream with bounded memory (multipart / block list). */
  put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult>;
  /** Streams an object; a dropped connection resumes from the last byte received. Throws NotFoundError. */
  get(key: string, opts?: GetOptions): Promise<Readable>;
  /** Convenience for small objects. Throws NotFoundError. */
  getBuffer(key: string): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Paginated listing of every key under prefix; with delimiter '/', one level with common prefixes. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListEntry>;
  /** Deletes keys in batches of limits.deleteBatchSize; missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Releases sockets. */
  close(): Promise<void>;
}
