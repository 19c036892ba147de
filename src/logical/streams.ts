/** Compression for dump and restore (src/codec); 'none' adds no stage. */
import type { Duplex } from 'node:stream';
import { compressStream, decompressStream } from '../codec/index.js';
import type { DumpCodec } from './keys.js';

/** Compressor for a dump codec, or undefined when the bytes go out as they are. */
export function compressor(codec: DumpCodec): Duplex | undefined {
  return codec === 'none' ? undefined : compressStream(codec);
}

export function decompressor(codec: DumpCodec): Duplex | undefined {
  return codec === 'none' ? undefined : decompressStream(codec);
}
