/** Small pieces shared by the cloud drivers. */
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ListEntry, ObjectInfo, PutResult } from './types.js';

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
