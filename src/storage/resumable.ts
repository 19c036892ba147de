/**
 * A download stream that survives dropped connections: when the body fails mid-stream (or ends
 * before the announced length), the object is requested again from the first byte not yet
 * delivered, up to the retry policy's attempts without progress. Any failure of a body that
 * started fine counts as a transport failure (SDKs rewrap resets into generic errors); a
 * permanent cause shows up as an error of the re-request, which is not retried. Each re-request
 * must return the same ETag, so bytes of two versions of an object are never spliced together.
 */
import { Readable } from 'node:stream';
import { DEFAULT_RETRY, backoff, withRetry } from './retry.js';

export interface RangeResponse {
  body: Readable;
  /** Bytes this response will deliver. */
  length: number;
  etag?: string;
  /** The Content-Range header of a ranged response, checked against the request. */
  contentRange?: string;
}

/** Requests bytes start..end (inclusive; end undefined = to the end of the object). */
export type RangeOpener = (start: number, end: number | undefined, signal?: AbortSignal) => Promise<RangeResponse>;

/**
 * Checks a ranged response really starts at `start` and stops at `end`: a server that ignores or
 * misreads Range (some S3-compatible servers do) would otherwise splice wrong bytes into a resume.
 */
export function assertContentRange(contentRange: string | undefined, start: number, end: number | undefined): void {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? '');
  const ok = m !== null && Number(m[1]) === start && (end === undefined || Number(m[2]) === end || (m[3] !== '*' && end >= Number(m[3]) - 1 && Number(m[2]) === Number(m[3]) - 1));
  if (!ok) throw new Error(`server answered range ${start}-${end ?? ''} with ${contentRange ? `"${contentRange}"` : 'the whole object'}`);
}

export interface ResumableOptions {
  start?: number;
  end?: number;
  signal?: AbortSignal;
  /** Turns a final failure into the caller's error type (operation, key, store). */
  wrapError(err: unknown): Error;
}

class TruncatedBody extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
  constructor(got: number, expected: number) {
    super(`response body ended after ${got} of ${expected} bytes`);
  }
}

/** Opens a range and refuses (releasing the socket) a response that does not cover exactly that range. */
async function openChecked(open: RangeOpener, start: number, end: number | undefined, signal?: AbortSignal): Promise<RangeResponse> {
  const res = await open(start, end, signal);
  if (start > 0 || end !== undefined) {
    try {
      assertContentRange(res.contentRange, start, end);
    } catch (e) {
      res.body.destroy();
      throw e;
    }
  }
  return res;
}

export async function resumableDownload(open: RangeOpener, opts: ResumableOptions): Promise<Readable> {
  const start = opts.start ?? 0;
  // The first request fails fast with NotFoundError etc.; only transient failures are retried.
  const first = await withRetry(() => openChecked(open, start, opts.end, opts.signal), { signal: opts.signal }).catch((e) => {
    throw opts.wrapError(e);
  });
  const endExclusive = start + first.length;

  async function* bytes(): AsyncGenerator<Buffer> {
    let current = first;
    let position = start;
    let failuresWithoutProgress = 0;
    try {
      for (;;) {
        try {
          for await (const chunk of current.body) {
            position += (chunk as Buffer).length;
            failuresWithoutProgress = 0;
            yield chunk as Buffer;
          }
          if (position < endExclusive) throw new TruncatedBody(position - start, first.length);
          return;
        } catch (e) {
          current.body.destroy();
          if (opts.signal?.aborted || ++failuresWithoutProgress >= DEFAULT_RETRY.maxAttempts) throw opts.wrapError(e);
          await backoff(failuresWithoutProgress, opts.signal);
          try {
            current = await withRetry(() => openChecked(open, position, endExclusive - 1, opts.signal), { signal: opts.signal });
          } catch (reopenError) {
            throw opts.wrapError(reopenError);
          }
          if (first.etag && current.etag && current.etag !== first.etag) {
            throw opts.wrapError(new Error(`object changed during download (ETag ${first.etag} became ${current.etag})`));
          }
        }
      }
    } finally {
      // Also runs when the consumer destroys the stream early: release the socket now.
      current.body.destroy();
    }
  }

  return Readable.from(bytes(), { objectMode: false });
}
