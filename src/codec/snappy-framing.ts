/**
 * Snappy framing format (https://github.com/google/snappy/blob/main/framing_format.txt), the
 * format python-snappy's stream_compress writes and barman-cloud stores as `.snappy`.
 *
 * Written here rather than using the `snappy` package's framed Compressor because a backup's
 * blocks must be framed independently and reassembled in order (codec/parallel.ts), and because
 * the decoder must verify every chunk's CRC-32C itself. The raw block compression comes from
 * `snappy`, the CRC from `@node-rs/crc32`.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type * as Snappy from 'snappy';
import { lazyRequire } from '../util/lazy-require.js';
import { Crc32c } from '../io/hash.js';
import { CorruptDataError } from './errors.js';
import { BlockAccumulator } from './blocks.js';

const snappy = lazyRequire<typeof Snappy>('snappy');

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

/**
 * snappy's output copied into a V8 Buffer, its own freed before the call returns. Left as snappy
 * makes it, each chunk is a Buffer of the binding's mimalloc, freed only when V8 collects it, and
 * mimalloc keeps much of what it freed: a 1160 MB backup peaked at 245 MB with those, compressed
 * on libuv's pool (docs/measurements/backup-memory.md).
 */
const COPY_OUTPUT = { copyOutputData: true };

/**
 * Encodes data (any length) as framed chunks, without the stream identifier, on the calling
 * thread. Also for a backup's parallel blocks: snappy compresses 64 KiB in well under a
 * millisecond, less than a round trip through libuv's pool costs (1 GB: 1.0 CPU s here against
 * 1.4 on the pool, and less wall time).
 */
export function snappyFrameChunksSync(data: Buffer): Buffer {
  const out: Buffer[] = [];
  for (const p of pieces(data)) out.push(...frameChunk(p, snappy().compressSync(p, COPY_OUTPUT)));
  return Buffer.concat(out);
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

/** Bytes of decoded data per output buffer: two whole chunks, so a decoded stream is half as many pieces. */
export const SNAPPY_OUT_SIZE = 2 * SNAPPY_MAX_CHUNK;

/**
 * Streaming framed-snappy decoder. Verifies the stream identifier, every chunk's CRC-32C and the
 * 64 KiB limit; a stream that ends inside a chunk is an error. Empty input decodes to nothing,
 * as python-snappy writes nothing for an empty file.
 *
 * Memory (restores, docs/recovery.md): it is done with each input chunk at its write callback (a
 * frame chunk cut by the input's end is copied into one buffer of its own), so the decode worker
 * reuses the input's buffer; decoded chunks are copied into output buffers from `outputBuffer` (the
 * worker's transfer buffers), SNAPPY_OUT_SIZE bytes each; and `snappy` is asked for a V8 buffer,
 * not one of its own allocator's: those are freed only when V8 collects them, and the allocator
 * (mimalloc, linked into the binding) kept some 30-45 MB more resident in a restore.
 */
export class SnappyFrameDecoder extends Transform {
  private sawIdentifier = false;
  /** A frame chunk the input cut, header first: never more than one data chunk. */
  private readonly partial = Buffer.allocUnsafe(4 + MAX_DATA_CHUNK_BODY);
  private partialLength = 0;
  /** The size (header included) of the chunk in `partial`, once its header is there. */
  private partialWanted = 0;
  /** Bytes of a skippable chunk still to pass over (up to 16 MiB: not buffered). */
  private skipping = 0;
  private out: Buffer | undefined;
  private outLength = 0;

  constructor(private readonly outputBuffer: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size)) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decodeInput(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    const trailing = this.partialLength || this.skipping;
    if (trailing) {
      callback(new CorruptDataError('snappy', `stream ends inside a chunk (${trailing} ${this.partialLength ? 'trailing' : 'missing'} bytes)`));
      return;
    }
    this.pushOutput();
    callback();
  }

  private decodeInput(input: Buffer): void {
    let at = 0;
    while (at < input.length) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, input.length - at);
        this.skipping -= n;
        at += n;
      } else if (this.partialLength > 0 || input.length - at < 4) {
        at = this.fillPartial(input, at);
      } else {
        const size = this.chunkSize(input, at);
        if (size < 0) {
          this.skipping = -size - 4;
          at += 4;
        } else if (input.length - at >= size) {
          this.decodeChunk(input[at]!, input.subarray(at + 4, at + size));
          at += size;
        } else {
          at = this.fillPartial(input, at);
        }
      }
    }
  }

  /** Copies the next bytes of a cut chunk into `partial`, and decodes it once whole; returns where the input continues. */
  private fillPartial(input: Buffer, at: number): number {
    const wanted = this.partialLength < 4 ? 4 : this.partialWanted;
    const n = Math.min(wanted - this.partialLength, input.length - at);
    input.copy(this.partial, this.partialLength, at, at + n);
    this.partialLength += n;
    if (this.partialLength === 4 && wanted === 4) {
      const size = this.chunkSize(this.partial, 0);
      if (size < 0) {
        this.skipping = -size - 4;
        this.partialLength = 0;
        return at + n;
      }
      this.partialWanted = size;
    }
    if (this.partialLength >= 4 && this.partialLength === this.partialWanted) {
      this.partialLength = 0;
      this.decodeChunk(this.partial[0]!, this.partial.subarray(4, this.partialWanted));
    }
    return at + n;
  }

  /**
   * The size, header included, of the chunk whose 4-byte header is at `at`; negative for a
   * skippable chunk (0x80-0xfe, incl. padding). Throws for a chunk no valid stream has.
   */
  private chunkSize(buf: Buffer, at: number): number {
    const type = buf[at]!;
    const length = buf.readUIntLE(at + 1, 3);
    if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
      if (length > MAX_DATA_CHUNK_BODY) throw new CorruptDataError('snappy', `chunk of ${length} bytes exceeds the 64 KiB limit`);
      return 4 + length;
    }
    if (type === CHUNK_STREAM_IDENTIFIER) {
      if (length !== SNAPPY_STREAM_IDENTIFIER.length - 4) throw new CorruptDataError('snappy', 'bad stream identifier');
      return 4 + length;
    }
    // 0x02-0x7f are reserved unskippable chunks.
    if (type < 0x80) throw new CorruptDataError('snappy', `reserved unskippable chunk type 0x${type.toString(16)}`);
    return -(4 + length);
  }

  private decodeChunk(type: number, body: Buffer): void {
    if (type === CHUNK_STREAM_IDENTIFIER) {
      if (!body.equals(SNAPPY_STREAM_IDENTIFIER.subarray(4))) throw new CorruptDataError('snappy', 'bad stream identifier');
      this.sawIdentifier = true;
      return;
    }
    if (!this.sawIdentifier) throw new CorruptDataError('snappy', 'stream does not start with the sNaPpY identifier');
    if (body.length < 4) throw new CorruptDataError('snappy', 'chunk too short for its checksum');
    const expected = body.readUInt32LE(0);
    let data = body.subarray(4);
    if (type === CHUNK_COMPRESSED) {
      try {
        data = snappy().uncompressSync(data, { asBuffer: true, copyOutputData: true }) as Buffer;
      } catch (err) {
        throw new CorruptDataError('snappy', `invalid compressed chunk: ${(err as Error).message}`);
      }
    }
    if (data.length > SNAPPY_MAX_CHUNK) throw new CorruptDataError('snappy', `chunk decodes to ${data.length} bytes, more than 64 KiB`);
    if (maskedCrc(data) !== expected) throw new CorruptDataError('snappy', 'chunk checksum mismatch');
    if (this.out && this.outLength + data.length > this.out.length) this.pushOutput();
    this.out ??= this.outputBuffer(SNAPPY_OUT_SIZE);
    this.out.set(data, this.outLength);
    this.outLength += data.length;
  }

  /** Pushes the decoded bytes gathered so far, a view of their output buffer's first bytes. */
  private pushOutput(): void {
    if (!this.out || this.outLength === 0) return;
    const full = this.out.subarray(0, this.outLength);
    this.out = undefined;
    this.outLength = 0;
    this.push(full);
  }
}
