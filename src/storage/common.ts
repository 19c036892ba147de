/** Small pieces shared by the cloud drivers. */
import { Transform, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ListEntry, ObjectInfo, PutResult } from './types.js';

/** Reads a (small) stream into one Buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Passes bytes through unchanged and counts them (the size of a streamed upload). */
export function byteCounter(): Transform & { bytes: number } {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { bytes: number };
  counter.bytes = 0;
  return counter;
}

/** Pipes body through a byte counter, forwarding a source error to the counter. */
export function counted(body: Readable): Transform & { bytes: number } {
  const counter = byteCounter();
  body.on('error', (e) => counter.destroy(e));
  return body.pipe(counter);
}

/**
 * Interleaves one page of objects and common prefixes in key order (providers return them as
 * two separately sorted lists).
 */
export function* mergeListing(objects: ObjectInfo[], prefixes: string[]): Generator<ListEntry> {
  let o = 0;
  let p = 0;
  while (o < objects.length || p < prefixes.length) {
    if (p >= prefixes.length || (o < objects.length && objects[o].key < prefixes[p])) yield { object: objects[o++] };
    else yield { prefix: prefixes[p++] };
  }
}

/** S3's x-amz-tagging form: URL-encoded key=value pairs. */
export function tagQuery(tags: Record<string, string>): string {
  return new URLSearchParams(tags).toString();
}

/** An ifAbsent put that found the object: consume a stream body so the caller's pipeline completes. */
export async function discardBody(body: Buffer | Readable, size: number): Promise<PutResult> {
  if (!Buffer.isBuffer(body)) {
    body.resume();
    await finished(body);
  }
  return { status: 'exists', size };
}
