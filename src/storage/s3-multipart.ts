/**
 * S3 multipart upload of a stream with part buffers that are refilled, not reallocated: at most
 * queueSize + 1 buffers of partSize (queueSize parts uploading, one filling), allocated once per
 * upload, and no copy of a part after it is filled. @aws-sdk/lib-storage, which this replaces,
 * collected each part from the stream's chunks and then concatenated them into a fresh Buffer, so
 * every part existed twice for a while and each one was new garbage (5-10 MiB per part in flight
 * in a sidecar under its 128Mi budget, docs/measurements/plugin-memory.md).
 *
 * A body that ends within its first part is stored with one PutObject (no multipart upload and no
 * part buffer: its chunks are joined once). Each part carries its Content-MD5, so the server
 * checks every byte; any failure aborts the upload, so no parts are left behind.
 */
import type { Readable } from 'node:stream';
import type { CompletedPart, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from './s3-sdk.js';
import { digestOf } from '../io/hash.js';
import { copied } from '../io/lent.js';

export interface MultipartOptions {
  partSize: number;
  queueSize: number;
  maxParts: number;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  /** Stores a body that fit in one part (the caller's single-request PUT). */
  putWhole(body: Buffer): Promise<void>;
}

/** Reads a stream into part-sized Buffers, copying each chunk once into a buffer it is given. */
class PartReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private rest: Buffer | undefined;
  ended = false;

  constructor(body: Readable) {
    this.chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async next(): Promise<Buffer | undefined> {
    if (this.rest) {
      const r = this.rest;
      this.rest = undefined;
      return r;
    }
    if (this.ended) return undefined;
    const { value, done } = await this.chunks.next();
    if (done) this.ended = true;
    return done ? undefined : Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
  }

  /**
   * The first part as the stream's own chunks, up to `size` bytes, so that a small body never
   * costs a part buffer; `done` then tells whether that was all of it.
   */
  async head(size: number): Promise<Buffer[]> {
    const held: Buffer[] = [];
    let n = 0;
    while (n < size) {
      const chunk = await this.next();
      if (!chunk) return held;
      const take = Math.min(chunk.length, size - n);
      held.push(chunk.subarray(0, take));
      if (take < chunk.length) this.rest = chunk.subarray(take);
      n += take;
    }
    // Exactly one part's worth: whether more follows decides between a PUT and a multipart upload.
    const more = await this.next();
    if (more) this.rest = more;
    return held;
  }

  /** Fills `into` from the stream; returns the bytes written (less than its length only at the end). */
  async fill(into: Buffer): Promise<number> {
    let n = 0;
    while (n < into.length) {
      const chunk = await this.next();
      if (!chunk) break;
      const take = chunk.copy(into, n, 0, Math.min(chunk.length, into.length - n));
      // An uncompressed backup's read buffers go back to their lender (io/lent.ts) once stored here.
      copied(chunk.subarray(0, take));
      if (take < chunk.length) this.rest = chunk.subarray(take);
      n += take;
    }
    return n;
  }

  get done(): boolean {
    return this.ended && !this.rest;
  }
}

/** Uploads `body` to params.Bucket/Key; resolves to the number of bytes stored. */
export async function multipartUpload(client: S3Client, params: PutObjectCommandInput, body: Readable, opts: MultipartOptions): Promise<number> {
  const reader = new PartReader(body);
  try {
    const first = await reader.head(opts.partSize);
    if (reader.done) {
      const whole = first.length === 1 ? first[0] : Buffer.concat(first);
      await opts.putWhole(whole);
      opts.onProgress?.(whole.length);
      return whole.length;
    }
    return await uploadParts(client, params, reader, first, opts);
  } finally {
    // A failed or aborted upload stops reading: the source's file or socket is released now.
    if (!reader.ended) body.destroy();
  }
}

async function uploadParts(client: S3Client, params: PutObjectCommandInput, reader: PartReader, first: Buffer[], opts: MultipartOptions): Promise<number> {
  const { Bucket, Key, IfNoneMatch, ...createParams } = params;
  const sendOpts = { abortSignal: opts.signal };
  const { UploadId } = await client.send(new s3Sdk.CreateMultipartUploadCommand({ Bucket, Key, ...createParams }), sendOpts);
  const free: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let stored = 0;
  let failure: unknown;

  const send = (part: Buffer, partNumber: number, backing: Buffer) => {
    const p = client
      .send(new s3Sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber: partNumber, Body: part, ContentLength: part.length, ContentMD5: digestOf('md5', part, 'base64') }), sendOpts)
      .then((out) => {
        parts.push({ ETag: out.ETag, PartNumber: partNumber });
        stored += part.length;
        opts.onProgress?.(stored);
        free.push(backing);
      })
      .catch((e: unknown) => {
        failure ??= e;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const take = () => free.pop() ?? Buffer.allocUnsafe(opts.partSize);

  try {
    let partNumber = 1;
    const head = take();
    let n = 0;
    for (const chunk of first) n += chunk.copy(head, n);
    send(head.subarray(0, n), partNumber, head);
    while (!reader.done && failure === undefined) {
      // queueSize parts uploading and one filling: wait for a part to finish before filling more.
      while (inFlight.size >= opts.queueSize && failure === undefined) await Promise.race(inFlight);
      if (failure !== undefined) break;
      const buf = take();
      const filled = await reader.fill(buf);
      // The stream ended exactly at a part boundary.
      if (filled === 0) break;
      if (++partNumber > opts.maxParts) throw new Error(`the body needs more than ${opts.maxParts} parts of ${opts.partSize} bytes; pass sizeHint to raise the part size`);
      send(buf.subarray(0, filled), partNumber, buf);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(new s3Sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfNoneMatch, MultipartUpload: { Parts: parts } }), sendOpts);
    return stored;
  } catch (e) {
    await Promise.all(inFlight);
    // Best effort: a part left behind only costs storage until the bucket's lifecycle rule removes it.
    await client.send(new s3Sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw e;
  }
}
