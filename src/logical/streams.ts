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

/**
 * Downloaded bytes between two young-generation collections in a restore (util/gc.ts
 * youngCollector): the download's chunks die young, and V8 alone lets tens of MiB of them pile up
 * first (a restore of 280 MB peaked at 107-111 MiB without, 95-100 with). A dump gains nothing
 * measurable from it: its chunks are fewer and smaller once compressed.
 */
export const SCAVENGE_EVERY = 4 * 1024 * 1024;
