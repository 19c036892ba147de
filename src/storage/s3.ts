/**
 * S3 driver (AWS SDK v3), also for S3-compatible servers through endpointURL (path-style).
 *
 * Limits (AWS S3): parts 5 MiB..5 GiB except the last, at most 10,000 parts per object (so a
 * stream larger than partSize x 10,000 needs PutOptions.sizeHint to raise the part size), at
 * most 1000 keys per DeleteObjects. Memory per streaming put: partSize x (queueSize + 1).
 *
 * One S3Client per store, with keep-alive agents and our retry policy (retry.ts) in place of the
 * SDK's. Checksums are computed/validated only when an operation requires them, and then as
 * Content-MD5: the SDK's newer default (CRC32 on every request, aws-chunked bodies) and its CRC32
 * headers break many S3-compatible servers (see checksumsEveryStoreAccepts).
 */
import { Readable } from 'node:stream';
import type { PutObjectCommandInput, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { s3Sdk } from './s3-sdk.js';
import type { ObjectStoreOptions } from './options.js';
import { UserError } from '../util/errors.js';
import type { GetOptions, ListEntry, ListOptions, ObjectInfo, ObjectStore, PutOptions, PutResult, StorageLimits } from './types.js';
import { errorFacts, readFailure, storageError, StorageError } from './errors.js';
import { assertKey, partSizeFor } from './keys.js';
import { keepAliveAgents, type Agents } from './agents.js';
import { DEFAULT_RETRY, backoff, backoffDelay, isTransient } from './retry.js';
import { resumableDownload } from './resumable.js';
import { safeDisplay } from './destination.js';
import { collect } from '../io/collect.js';
import { digestOf } from '../io/hash.js';
import { discardBody, mergeListing, tagQuery } from './common.js';
import { multipartUpload } from './s3-multipart.js';

const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 16 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;

type RetryStrategyV2 = Extract<NonNullable<S3ClientConfig['retryStrategy']>, { acquireInitialRetryToken: unknown }>;

/** Adapts retry.ts to the SDK's retry middleware, so every request (and every multipart part) uses it. */
function sharedRetryStrategy(): RetryStrategyV2 {
  const token = (retries: number, delay: number) => ({ getRetryCount: () => retries, getRetryDelay: () => delay });
  return {
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retries = previous.getRetryCount() + 1;
      if (retries >= DEFAULT_RETRY.maxAttempts || !isTransient(info.error)) throw info.error;
      return token(retries, backoffDelay(retries));
    },
    recordSuccess: () => undefined,
  };
}

/** For a request whose body is a stream: a consumed stream cannot be sent again, so its caller retries (put() with reopen). */
function noRetryStrategy(): RetryStrategyV2 {
  return {
    acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
    refreshRetryTokenForRetry: async (_previous, info) => {
      throw info.error;
    },
    recordSuccess: () => undefined,
  };
}

/**
 * Rewrites the SDK's checksum headers, before signing, into what every S3 implementation accepts.
 *
 * Operations that require a checksum (DeleteObjects) get CRC32 headers from the SDK even with
 * requestChecksumCalculation WHEN_REQUIRED (x-amz-sdk-checksum-algorithm, x-amz-checksum-crc32);
 * S3-compatible stores that predate them refuse the request, as they refused boto3 >= 1.36. The
 * body of such an operation is a small XML document, so it gets Content-MD5 instead, which AWS
 * S3 accepts too.
 *
 * A request that carries Content-MD5 is not also hashed with SHA-256 for its signature
 * (x-amz-content-sha256: UNSIGNED-PAYLOAD, as boto3 and the AWS CLI do for S3): the server still
 * verifies the body against the MD5, and the signature covers the Content-MD5 header, so the body
 * cannot be changed on the way without the request failing. The WAL daemon computes the MD5 on a
 * worker thread and so saves a second pass over every segment on its event loop.
 *
 * Content-MD5 stays although SHA-256 and CRC32 are cheaper here: buckets with Object Lock refuse a
 * PUT without Content-MD5 or an x-amz-checksum-* header, and some S3-compatible stores accept only
 * Content-MD5 there (pgBackRest 2.55 dropped it from WAL PUTs and had to restore it, pgbackrest#2613).
 */
function checksumsEveryStoreAccepts(request: unknown): void {
  const r = request as { headers?: Record<string, string>; body?: unknown };
  const headers = r.headers;
  if (!headers) return;
  const body = r.body;
  if (headers['x-amz-sdk-checksum-algorithm'] !== undefined && (typeof body === 'string' || body instanceof Uint8Array)) {
    for (const name of Object.keys(headers)) {
      if (name === 'x-amz-sdk-checksum-algorithm' || name.startsWith('x-amz-checksum-')) delete headers[name];
    }
    headers['content-md5'] = digestOf('md5', typeof body === 'string' ? Buffer.from(body) : body, 'base64');
  }
  if (headers['content-md5'] !== undefined) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
}

export interface S3Location {
  bucket: string;
  prefix: string;
  displayUrl: string;
}

export class S3ObjectStore implements ObjectStore {
  readonly provider = 's3' as const;
  readonly limits: StorageLimits;
  readonly displayUrl: string;
  private readonly config: S3ClientConfig;
  private readonly client: S3Client;
  /** The same connections, without the SDK's retries: for streamed PUTs (created on first use). */
  private streamClient?: S3Client;
  private readonly agents: Agents;
  private readonly bucket: string;
  private readonly root: string;

  constructor(options: ObjectStoreOptions, location: S3Location) {
    this.bucket = location.bucket;
    this.root = location.prefix;
    this.displayUrl = options.endpointURL ? `${location.displayUrl} (endpoint ${safeDisplay(options.endpointURL)})` : location.displayUrl;
    this.limits = {
      minPartSize: 5 * MiB,
      maxPartSize: 5 * 1024 * MiB,
      maxParts: 10_000,
      deleteBatchSize: 1000,
      // AWS honours If-None-Match on PUT and CompleteMultipartUpload; S3-compatible servers may
      // silently ignore it (s3rver does), so custom endpoints get a head-then-put instead.
      conditionalCreate: !options.endpointURL,
      metadata: true,
      tags: true,
    };
    const s3 = options.s3 ?? {};
    if (!s3.inheritFromIAMRole && (s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
      throw new UserError(`${this.displayUrl}: s3Credentials needs both accessKeyId and secretAccessKey`, 'or set inheritFromIAMRole: true');
    }
    // The SDK warns on every process start about its own future Node support; not actionable for pgark users.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.agents = keepAliveAgents(options.endpointCA);
    this.config = {
      region: s3.region?.trim() || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
      endpoint: options.endpointURL,
      forcePathStyle: options.endpointURL !== undefined,
      followRegionRedirects: true,
      // Without static keys the SDK's default chain applies: env, shared config, IRSA web identity, ECS/EC2 roles.
      credentials:
        s3.accessKeyId && s3.secretAccessKey && !s3.inheritFromIAMRole
          ? { accessKeyId: s3.accessKeyId.trim(), secretAccessKey: s3.secretAccessKey.trim(), sessionToken: s3.sessionToken?.trim() || undefined }
          : undefined,
      requestHandler: { httpAgent: this.agents.http, httpsAgent: this.agents.https, connectionTimeout: 10_000, requestTimeout: 120_000 },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    this.client = this.newClient(sharedRetryStrategy());
  }

  private newClient(retryStrategy: RetryStrategyV2): S3Client {
    const client = new s3Sdk.S3Client({ ...this.config, retryStrategy });
    client.middlewareStack.add(
      (next) => (args) => {
        checksumsEveryStoreAccepts(args.request);
        return next(args);
      },
      // Low priority: after the SDK's own checksum middleware of the same step, before signing.
      { step: 'build', priority: 'low', name: 'pgarkChecksumsEveryStoreAccepts' },
    );
    return client;
  }

  private objectKey(key: string): string {
    assertKey(key);
    return this.root + key;
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    const Key = this.objectKey(key);
    const partSize = partSizeFor(opts.partSize ?? DEFAULT_PART_SIZE, this.limits, opts.sizeHint ?? (Buffer.isBuffer(body) ? body.length : undefined), this.limits.maxParts);
    const params: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key,
      Metadata: opts.metadata,
      ContentType: opts.contentType,
      ServerSideEncryption: opts.encryption,
      Tagging: opts.tags && Object.keys(opts.tags).length ? tagQuery(opts.tags) : undefined,
      IfNoneMatch: opts.ifAbsent ? '*' : undefined,
    };
    try {
      if (opts.ifAbsent && !this.limits.conditionalCreate) {
        const existing = await this.head(key);
        if (existing) return await discardBody(body, existing.size);
      }
      if (Buffer.isBuffer(body) && body.length <= partSize) {
        // The hot path (WAL segments): one request, integrity checked by the server via Content-MD5.
        await this.putBuffer(params, body, opts.contentMD5, opts.signal);
        opts.onProgress?.(body.length);
        return { status: 'created', size: body.length };
      }
      if (!Buffer.isBuffer(body) && opts.contentLength !== undefined && opts.contentMD5 !== undefined && opts.contentLength <= this.limits.maxPartSize) {
        return { status: 'created', size: await this.streamedPut(params, body, opts.contentLength, opts.contentMD5, opts) };
      }
      return { status: 'created', size: await this.multipart(params, body, partSize, opts) };
    } catch (e) {
      if (opts.ifAbsent && isPreconditionFailure(e)) {
        return { status: 'exists', size: (await this.head(key))?.size ?? 0 };
      }
      throw storageError('put', key, this.displayUrl, e);
    }
  }

  /**
   * One PUT whose body streams from the caller's source: memory holds the socket's buffers, not
   * the object. Content-MD5 lets the server check every byte (and spares a SHA-256 pass for the
   * signature, see checksumsEveryStoreAccepts). A transient failure is retried with a fresh
   * stream from opts.reopen, which is what the SDK's own retry cannot do.
   */
  private async streamedPut(params: PutObjectCommandInput, body: Readable, length: number, md5: string, opts: PutOptions): Promise<number> {
    this.streamClient ??= this.newClient(noRetryStrategy());
    let current = body;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.streamClient.send(new s3Sdk.PutObjectCommand({ ...params, Body: current, ContentLength: length, ContentMD5: md5 }), { abortSignal: opts.signal });
        opts.onProgress?.(length);
        return length;
      } catch (e) {
        current.destroy();
        if (!opts.reopen || attempt >= DEFAULT_RETRY.maxAttempts || !isTransient(e) || opts.signal?.aborted) throw e;
        await backoff(attempt, opts.signal);
        current = opts.reopen();
      }
    }
  }

  /** Streams body as a multipart upload holding at most partSize x (queueSize + 1) bytes (s3-multipart.ts). */
  private multipart(params: PutObjectCommandInput, body: Buffer | Readable, partSize: number, opts: PutOptions): Promise<number> {
    return multipartUpload(this.client, params, Buffer.isBuffer(body) ? Readable.from([body]) : body, {
      partSize,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
      maxParts: this.limits.maxParts,
      onProgress: opts.onProgress,
      signal: opts.signal,
      putWhole: (whole) => this.putBuffer(params, whole, undefined, opts.signal),
    });
  }

  /** One PutObject of a Buffer, checked by the server via Content-MD5. */
  private async putBuffer(params: PutObjectCommandInput, body: Buffer, md5: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    await this.client.send(new s3Sdk.PutObjectCommand({ ...params, Body: body, ContentLength: body.length, ContentMD5: md5 ?? digestOf('md5', body, 'base64') }), { abortSignal: signal });
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const Key = this.objectKey(key);
    return resumableDownload(
      async (start, end, signal) => {
        const range = start > 0 || end !== undefined ? `bytes=${start}-${end ?? ''}` : undefined;
        const out = await this.client.send(new s3Sdk.GetObjectCommand({ Bucket: this.bucket, Key, Range: range }), { abortSignal: signal });
        return { body: out.Body as Readable, length: out.ContentLength ?? 0, etag: out.ETag, contentRange: out.ContentRange };
      },
      { start: opts.start, end: opts.end, signal: opts.signal, wrapError: (e) => this.readError(key, e) },
    );
  }

  private readError(key: string, e: unknown): Error {
    return readFailure(e, key, this.displayUrl, { missingObject: 'NoSuchKey', missingContainer: 'NoSuchBucket' });
  }

  async getBuffer(key: string): Promise<Buffer> {
    return collect(await this.get(key));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new s3Sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified, metadata: out.Metadata };
    } catch (e) {
      const { codes, status } = errorFacts(e);
      // HEAD has no body, so a missing bucket is also a bare 404; tell them apart with a listing.
      if (status === 404 || codes.includes('NotFound')) {
        await this.assertBucket('head', key);
        return undefined;
      }
      throw storageError('head', key, this.displayUrl, e);
    }
  }

  private async assertBucket(operation: string, key: string): Promise<void> {
    try {
      await this.client.send(new s3Sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root, MaxKeys: 1 }));
    } catch (e) {
      throw storageError(operation, key, this.displayUrl, e);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new s3Sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.root + prefix,
            Delimiter: opts.delimiter,
            StartAfter: opts.startAfter === undefined ? undefined : this.root + opts.startAfter,
            ContinuationToken: token,
          }),
          { abortSignal: opts.signal },
        );
      } catch (e) {
        throw storageError('list', prefix, this.displayUrl, e);
      }
      const strip = (k: string) => k.slice(this.root.length);
      yield* mergeListing(
        (page.Contents ?? []).map((o) => ({ key: strip(o.Key!), size: o.Size ?? 0, lastModified: o.LastModified })),
        (page.CommonPrefixes ?? []).map((p) => strip(p.Prefix!)),
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += this.limits.deleteBatchSize) {
      const batch = keys.slice(i, i + this.limits.deleteBatchSize);
      let out;
      try {
        out = await this.client.send(
          new s3Sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Quiet: true, Objects: batch.map((k) => ({ Key: this.objectKey(k) })) } }),
        );
      } catch (e) {
        throw storageError('delete', batch[0], this.displayUrl, e);
      }
      const failed = out.Errors?.find((err) => err.Code !== 'NoSuchKey');
      if (failed) {
        const key = failed.Key?.slice(this.root.length);
        const kind = failed.Code === 'AccessDenied' ? 'auth' : 'other';
        throw new StorageError('delete', key, this.displayUrl, kind, `${failed.Code}: ${failed.Message} (${out.Errors!.length} of ${batch.length} keys failed)`);
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.streamClient?.destroy();
    this.agents.destroy();
  }
}

function isPreconditionFailure(e: unknown): boolean {
  const { codes, status } = errorFacts(e);
  return status === 412 || codes.includes('PreconditionFailed');
}
