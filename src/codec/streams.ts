/**
 * Streaming compression for every codec barman-cloud knows. Each stream holds a bounded amount of
 * data (at most one codec block: 64 KiB for snappy and lz4, the library's window for
 * gzip/zstd, a pipe buffer for the child-process codecs), so objects of any size can pass.
 */
import { PassThrough, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { gzipEncoder } from './encode-gzip.js';
import { ZstdDecoder } from './decode-zstd.js';
import { ZstdEncoder } from './encode-zstd.js';
import type { CodecName } from './types.js';
import { SnappyFrameDecoder, SnappyFrameEncoder } from './snappy-framing.js';
import { Lz4FrameEncoder, lz4Decoder } from './lz4.js';
import { codecProcess } from './child-process.js';
import { CorruptDataError } from './errors.js';

export interface CompressOptions {
  /** Codec-specific level; omitted = the codec's usual default. Ignored by snappy and lz4 (no levels). */
  level?: number;
}

export { GZIP_LEVEL } from './encode-gzip.js';

// bzip2 and xz go through the Debian `bzip2` / `xz` programs: no well-maintained native npm
// binding for them is installed here, and the programs are the reference implementations.
export function levelArg(level: number | undefined, min: number, max: number, codec: string): string[] {
  if (level === undefined) return [];
  if (!Number.isInteger(level) || level < min || level > max) throw new RangeError(`${codec} level must be an integer ${min}-${max}, got ${level}`);
  return [`-${level}`];
}

/** A Transform that compresses bytes with the codec ('none' passes them through). */
export function compressStream(codec: CodecName, opts: CompressOptions = {}): Transform {
  switch (codec) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return gzipEncoder(opts.level);
    case 'bzip2':
      return codecProcess(codec, 'bzip2', ['-c', '-z', ...levelArg(opts.level, 1, 9, codec)], false);
    case 'xz':
      return codecProcess(codec, 'xz', ['-c', '-z', ...levelArg(opts.level, 0, 9, codec)], false);
    case 'snappy':
      return new SnappyFrameEncoder();
    case 'lz4':
      return new Lz4FrameEncoder();
    case 'zstd':
      return new ZstdEncoder(opts.level);
  }
}

/**
 * Bytes zlib inflates per call. Its 16 KiB default made a 1 GB restore some 60,000 round trips
 * between the thread pool and the main thread, each also a chunk for every stage after it; at
 * 256 KiB inflating takes about 0.8x the CPU and 0.3x the system time (bench/restore.ts).
 */
const INFLATE_CHUNK = 256 * 1024;

/**
 * A Transform that decompresses the codec's stream; corrupt or truncated input fails the stream.
 * `outputBuffer` supplies zstd's and snappy's output buffers (the decode worker's transfer buffers);
 * the other codecs allocate their own.
 */
export function decompressStream(codec: CodecName, outputBuffer?: (size: number) => Buffer): Transform {
  switch (codec) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return wrapErrors(codec, zlib.createGunzip({ chunkSize: INFLATE_CHUNK }));
    case 'bzip2':
      return codecProcess(codec, 'bzip2', ['-c', '-d'], true);
    case 'xz':
      return codecProcess(codec, 'xz', ['-c', '-d'], true);
    case 'snappy':
      return new SnappyFrameDecoder(outputBuffer);
    case 'lz4':
      return lz4Decoder();
    case 'zstd':
      return wrapErrors(codec, new ZstdDecoder(outputBuffer));
  }
}

/** Re-labels a library's decoding errors as CorruptDataError so callers can tell them apart. */
function wrapErrors(codec: CodecName, t: Transform): Transform {
  const destroy = t.destroy.bind(t);
  t.destroy = (err?: Error) => destroy(err && !(err instanceof CorruptDataError) ? new CorruptDataError(codec, err.message) : err);
  return t;
}
