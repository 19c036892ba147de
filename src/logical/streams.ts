/** Stream pieces shared by dump and restore: byte counting + SHA-256, and compression (src/codec). */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { compressStream, decompressStream } from '../codec/index.js';
import type { DumpCodec } from './keys.js';

/** Passes bytes through unchanged while hashing and counting them; optionally checks them at the end. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  /** Hex SHA-256, set once every byte has passed. */
  sha256 = '';

  constructor(
    private readonly opts: {
      onBytes?: (total: number) => void;
      /** Returns an error to fail the stream before its end reaches the consumer. */
      verify?: (bytes: number, sha256: string) => Error | undefined;
    } = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.opts.onBytes?.(this.bytes);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.sha256 = this.hash.digest('hex');
    cb(this.opts.verify?.(this.bytes, this.sha256));
  }
}

/** Compressor for a dump codec, or undefined when the bytes go out as they are. */
export function compressor(codec: DumpCodec): Transform | undefined {
  return codec === 'none' ? undefined : compressStream(codec);
}

export function decompressor(codec: DumpCodec): Transform | undefined {
  return codec === 'none' ? undefined : decompressStream(codec);
}
