/**
 * Snappy framing format (https://github.com/google/snappy/blob/main/framing_format.txt), the
 * format python-snappy's stream_compress writes and barman-cloud stores as `.snappy`.
 *
 * Written here rather than using the `snappy` package's framed Compressor because parallel
 * compression needs to encode independent 64 KiB chunks on the threadpool and reassemble them in
 * order, and because the decoder must verify every chunk's CRC-32C itself. The raw block
 * compression comes from `snappy`, the CRC from `@node-rs/crc32`.
 */
import { Transform, type TransformCallback } from 'node:stream';
import snappy from 'snappy';
import { Crc32c } from '../io/hash.js';
import { CorruptDataError } from './errors.js';
import { BlockAccumulator } from './blocks.js';

/** Stream identifier chunk: type 0xff, length 6, "sNaPpY". */
export const SNAPPY_STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
/** The format caps the uncompressed data of one chunk at 64 KiB. */
export const SNAPPY_MAX_CHUNK = 65536;

const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_STREAM_IDENTIFIER = 0xff;
/** CRC plus the worst-case snappy expansion of 64 KiB (32 + n + n/6); longer data chunks are corrupt. */
const MAX_DATA_CHUNK_BODY = 4 + 32 + SNAPPY_MAX_CHUNK + Math.ceil(SNAPPY_MAX_CHUNK / 6);
/** Store a chunk uncompressed when compression saves less than 1/8 (as the reference encoders do). */
const MIN_SAVING_DIVISOR = 8;

function maskedCrc(data: Uint8Array): number {
  const crc = new Crc32c();
  crc.update(data);
  const c = crc.digest();
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

function chunkHeader(type: number, bodyLength: number, crc: number): Buffer {
  const h = Buffer.allocUnsafe(8);
  h[0] = type;
  h.writeUIntLE(bodyLength, 1, 3);
  h.writeUInt32LE(crc, 4);
  return h;
}

/** Frames one piece of at most 64 KiB given its raw snappy compression. */
function frameChunk(data: Buffer, compressed: Buffer): Buffer[] {
  const crc = maskedCrc(data);
  if (compressed.length < data.length - data.length / MIN_SAVING_DIVISOR) {
    return [chunkHeader(CHUNK_COMPRESSED, compressed.length + 4, crc), compressed];
  }
  return [chunkHeader(CHUNK_UNCOMPRESSED, data.length + 4, crc), data];
}

function* pieces(data: Buffer): Generator<Buffer> {
  for (let off = 0; off < data.length; off += SNAPPY_MAX_CHUNK) yield data.subarray(off, off + SNAPPY_MAX_CHUNK);
}

/** Encodes data (any length) as framed chunks, without the stream identifier. Synchronous. */
export function snappyFrameChunksSync(data: Buffer): Buffer {
  const out: Buffer[] = [];
  for (const p of pieces(data)) out.push(...frameChunk(p, snappy.compressSync(p)));
  return Buffer.concat(out);
}

/** Same as snappyFrameChunksSync, compressing on the libuv threadpool. */
export async function snappyFrameChunks(data: Buffer): Promise<Buffer> {
  const parts = [...pieces(data)];
  const compressed = await Promise.all(parts.map((p) => snappy.compress(p)));
  return Buffer.concat(parts.flatMap((p, i) => frameChunk(p, compressed[i]!)));
}

/** Streaming framed-snappy encoder; holds less than one 64 KiB chunk of input. */
export class SnappyFrameEncoder extends Transform {
  private readonly blocks = new BlockAccumulator(SNAPPY_MAX_CHUNK);

  constructor() {
    super();
    this.push(SNAPPY_STREAM_IDENTIFIER);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    for (const block of this.blocks.add(chunk)) this.push(snappyFrameChunksSync(block));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.blocks.rest();
    if (rest) this.push(snappyFrameChunksSync(rest));
    callback();
  }
}

/**
 * Streaming framed-snappy decoder. Verifies the stream identifier, every chunk's CRC-32C and the
 * 64 KiB limit; a stream that ends inside a chunk is an error. Empty input decodes to nothing,
 * as python-snappy writes nothing for an empty file.
 */
export class SnappyFrameDecoder extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private sawIdentifier = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    try {
      this.decodeAvailable();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.buffered.length) callback(new CorruptDataError('snappy', `stream ends inside a chunk (${this.buffered.length} trailing bytes)`));
    else callback();
  }

  private decodeAvailable(): void {
    let off = 0;
    const buf = this.buffered;
    while (buf.length - off >= 4) {
      const type = buf[off]!;
      const length = buf.readUIntLE(off + 1, 3);
      if ((type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) && length > MAX_DATA_CHUNK_BODY) {
        throw new CorruptDataError('snappy', `chunk of ${length} bytes exceeds the 64 KiB limit`);
      }
      if (buf.length - off - 4 < length) break;
      const body = buf.subarray(off + 4, off + 4 + length);
      off += 4 + length;
      this.decodeChunk(type, body);
    }
    this.buffered = buf.subarray(off);
  }

  private decodeChunk(type: number, body: Buffer): void {
    if (type === CHUNK_STREAM_IDENTIFIER) {
      if (!body.equals(SNAPPY_STREAM_IDENTIFIER.subarray(4))) throw new CorruptDataError('snappy', 'bad stream identifier');
      this.sawIdentifier = true;
      return;
    }
    if (!this.sawIdentifier) throw new CorruptDataError('snappy', 'stream does not start with the sNaPpY identifier');
    if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
      if (body.length < 4) throw new CorruptDataError('snappy', 'chunk too short for its checksum');
      const expected = body.readUInt32LE(0);
      let data: Buffer;
      if (type === CHUNK_COMPRESSED) {
        try {
          data = snappy.uncompressSync(body.subarray(4), { asBuffer: true }) as Buffer;
        } catch (err) {
          throw new CorruptDataError('snappy', `invalid compressed chunk: ${(err as Error).message}`);
        }
      } else {
        data = Buffer.from(body.subarray(4));
      }
      if (data.length > SNAPPY_MAX_CHUNK) throw new CorruptDataError('snappy', `chunk decodes to ${data.length} bytes, more than 64 KiB`);
      if (maskedCrc(data) !== expected) throw new CorruptDataError('snappy', 'chunk checksum mismatch');
      this.push(data);
      return;
    }
    // 0x02-0x7f are reserved unskippable chunks; 0x80-0xfe (incl. padding 0xfe) are skipped.
    if (type < 0x80) throw new CorruptDataError('snappy', `reserved unskippable chunk type 0x${type.toString(16)}`);
  }
}
