/** Byte counting: the size of a streamed upload, a decompressed WAL file, a dump. */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';

/** Passes bytes through unchanged; `bytes` is the running total, final once the stream ended. */
export class ByteCount extends Transform {
  bytes = 0;

  /** onChunk sees each chunk's length as it passes (progress displays add it up). */
  constructor(private readonly onChunk?: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onChunk?.(chunk.length);
    cb(null, chunk);
  }
}

export function count(onChunk?: (n: number) => void): ByteCount {
  return new ByteCount(onChunk);
}

/**
 * The body through a byte counter, for an API that reads the counter itself (an SDK's streaming
 * upload): pipeline() ties the two, so an error on either side fails both.
 */
export function counted(body: Readable): ByteCount {
  const counter = count();
  // The reader of the counter sees any error as the counter's own.
  pipeline(body, counter, () => undefined);
  return counter;
}
