/** Public entry point of the codec layer. */
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CODECS, CODEC_EXTENSION, type CodecName } from './types.js';
import { compressStream, decompressStream, type CompressOptions } from './streams.js';

export { CODECS, CODEC_EXTENSION, type CodecName } from './types.js';
export { CorruptDataError, CodecProcessError } from './errors.js';
export { compressStream, decompressStream, type CompressOptions } from './streams.js';
export { parallelCompressStream, type ParallelCompressOptions } from './parallel.js';

async function runThrough(input: Buffer, t: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([input]), t, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return Buffer.concat(out);
}

/** Whole-buffer helpers for small payloads (a WAL segment, a history file). */
export function compressBuffer(codec: CodecName, data: Buffer, opts?: CompressOptions): Promise<Buffer> {
  return runThrough(data, compressStream(codec, opts));
}

export function decompressBuffer(codec: CodecName, data: Buffer): Promise<Buffer> {
  return runThrough(data, decompressStream(codec));
}

/** The key suffix for a codec ('' for none). */
export function codecExtension(codec: CodecName): string {
  return CODEC_EXTENSION[codec];
}

/** Splits a known compression suffix off a file or key name: "x.tar.gz" -> {base: "x.tar", codec: "gzip"}. */
export function splitCodecSuffix(name: string): { base: string; codec: CodecName } {
  for (const codec of CODECS) {
    const ext = CODEC_EXTENSION[codec];
    if (ext && name.endsWith(ext) && name.length > ext.length) return { base: name.slice(0, -ext.length), codec };
  }
  return { base: name, codec: 'none' };
}
