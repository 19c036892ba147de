/**
 * Parallel compression for base-backup tars ("compression runs in parallel across cores").
 *
 * The output is always ONE valid stream of the codec, because barman-cloud-restore 3.4 reads tars
 * with Python's tarfile `r|gz` / `r|bz2`, which stop after the first gzip member / bzip2 stream.
 *
 * - gzip: pigz-style. Input is cut into blocks; each is raw-deflated on the libuv threadpool
 *   (async zlib), primed with the previous block's last 32 KiB as dictionary and ended with a
 *   sync flush so the pieces concatenate into one deflate stream; the last block ends the stream.
 *   One gzip header, and a trailer with the CRC-32 of all input (zlib.crc32, chained) and its length.
 * - snappy: the framing format is a sequence of independent <= 64 KiB chunks; blocks are framed on
 *   the main thread (faster than the threadpool's round trips, snappy-framing.ts) and emitted in
 *   order after one stream identifier.
 * - lz4: each block becomes a complete frame on the main thread (lz4BlockCodec says why);
 *   concatenated frames are one valid lz4 stream for the CLI and for Python's lz4.frame.
 * - zstd: libzstd's own worker threads (nbWorkers) produce a single frame.
 * - xz: `xz -T<workers>` compresses blocks in parallel into a single .xz stream.
 * - bzip2: one `bzip2` process. NOT parallel: no parallel bzip2 is available here.
 *
 * Memory bound (gzip, snappy, lz4): at most `workers` blocks are in flight, each holding its input
 * and its compressed output (<= input plus a small codec overhead), so about
 * workers x blockSize x 2, plus one partially filled block and, for gzip, the previous block kept
 * for its last 32 KiB of dictionary (2 x blockSize). zstd: libzstd buffers roughly
 * (workers + 1) x jobSize (jobSize = max(blockSize, 512 KiB)) plus its window. xz -T: the child
 * process uses about workers x 3 x dictionary size (24 MiB per thread at the default level 6).
 * Node's threadpool has 4 threads by default (UV_THREADPOOL_SIZE), which caps the useful
 * `workers` for gzip.
 */
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { CompressStream } from 'zstd-napi';
import type { CodecName } from './types.js';
import { BlockAccumulator } from './blocks.js';
import { copied } from '../io/lent.js';
import { youngCollector } from '../util/gc.js';
import { codecProcess } from './child-process.js';
import { SNAPPY_MAX_CHUNK, SNAPPY_STREAM_IDENTIFIER, snappyFrameChunksSync } from './snappy-framing.js';
import { lz4FrameOnThread, LZ4_FRAME_INPUT } from './lz4.js';
import { compressStream, GZIP_LEVEL, levelArg, type CompressOptions } from './streams.js';

/** Told where the frame after a cutFrame() starts in the output, once every byte before it is pushed. */
export type FrameEnded = (err: Error | null | undefined, nextFrameAt: number) => void;

/**
 * A compressor that can end its frame after the bytes written so far, so that what follows decodes
 * without what came before (a restart point for ranged reads). cutFrame goes through the write
 * queue (it returns false as write() does, when the caller should wait for 'drain') and does not
 * wait for the frame to be compressed: blocks keep compressing in parallel across it.
 */
export interface FrameCompressor extends Transform {
  cutFrame(ended: FrameEnded): boolean;
  /** Compressed bytes pushed so far. */
  readonly bytesOut: number;
  /**
   * Input a frame should hold before the caller ends it: each frame starts the codec without a
   * history, so small ones compress worse. 0 where ending one costs nothing (uncompressed).
   */
  readonly minFrame: number;
}

/** minFrame of the compressing codecs. */
export const MIN_FRAME = 1024 * 1024;

/** Written through the stream's own queue so that a frame ends exactly between the writes around it; also the marker of that point among the blocks in flight. */
const END_FRAME = Buffer.alloc(0);

export interface ParallelCompressOptions extends CompressOptions {
  /** Blocks compressed at the same time. Default 2. */
  workers?: number;
  /** Input bytes per block. Default 1 MiB (rounded up to a multiple of 64 KiB for snappy). */
  blockSize?: number;
}

const DEFAULT_WORKERS = 2;
const DEFAULT_BLOCK_SIZE = 1 << 20;
const DEFLATE_WINDOW = 32 * 1024;

/** How one codec turns independent blocks into pieces of a single stream. */
interface BlockCodec {
  header(): Buffer;
  /**
   * Compress a block that is not the last one. `previous` is the block before it (or undefined).
   * The codec reads `previous` only during the call and `data` until its promise settles: then
   * the compressor reuses their buffers, so the output must never share the input's memory.
   */
  block(data: Buffer, previous: Buffer | undefined): Promise<Buffer | Buffer[]>;
  /** Compress the last block (possibly empty) and return it with any trailer. */
  last(data: Buffer, previous: Buffer | undefined): Promise<Buffer | Buffer[]>;
}

/**
 * Compressed output per zlib call. zlib.deflateRaw gathers 16 KiB pieces and then joins them into
 * one more Buffer; the pieces of 64 KiB are pushed as they are, so a block's output is allocated
 * once.
 */
const DEFLATE_CHUNK = 64 * 1024;


/** One block through a raw deflate stream, its output kept as zlib's pieces. */
function deflateBlock(data: Buffer, opts: zlib.ZlibOptions): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const z = zlib.createDeflateRaw({ ...opts, chunkSize: DEFLATE_CHUNK });
    z.on('data', (piece: Buffer) => out.push(piece));
    z.on('error', reject);
    z.on('end', () => resolve(out));
    z.end(data);
  });
}

function gzipBlockCodec(level: number): BlockCodec {
  let crc = 0;
  let length = 0;
  const deflate = (data: Buffer, previous: Buffer | undefined, finishFlush: number): Promise<Buffer[]> => {
    crc = zlib.crc32(data, crc);
    length += data.length;
    const opts: zlib.ZlibOptions = { finishFlush, level };
    // zlib copies the dictionary when the stream is created: `previous` is free once this returns.
    if (previous) opts.dictionary = previous.subarray(Math.max(0, previous.length - DEFLATE_WINDOW));
    return deflateBlock(data, opts);
  };
  return {
    // RFC 1952 header: magic, CM=deflate, no flags, MTIME=0, XFL=0, OS=3 (Unix).
    header: () => Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]),
    block: (data, previous) => deflate(data, previous, zlib.constants.Z_SYNC_FLUSH),
    last: async (data, previous) => {
      const body = await deflate(data, previous, zlib.constants.Z_FINISH);
      const trailer = Buffer.allocUnsafe(8);
      trailer.writeUInt32LE(crc >>> 0, 0);
      trailer.writeUInt32LE(length % 2 ** 32, 4);
      return [...body, trailer];
    },
  };
}

const snappyBlockCodec: BlockCodec = {
  header: () => SNAPPY_STREAM_IDENTIFIER,
  // On the calling thread (snappy-framing.ts says why): `workers` does not apply to snappy.
  block: async (data) => snappyFrameChunksSync(data),
  last: async (data) => snappyFrameChunksSync(data),
};

/**
 * Frame bytes between two young-generation collections of a backup's lz4 compressor (lz4BlockCodec).
 */
export const LZ4_SCAVENGE_EVERY = 1024 * 1024;

/**
 * lz4 frames are made on the calling thread, and a scavenge runs every LZ4_SCAVENGE_EVERY bytes of
 * them. Each frame is a Buffer of lz4-napi's own mimalloc, freed only when V8 collects it. Made on
 * libuv's pool, the frames were freed on the main thread into the heaps of the 4 pool threads,
 * which take such frees back only when they next allocate in the same pages: on a 10 GB backup
 * those heaps grew from 24 to 44 MiB resident (/proc smaps, docs/measurements/backup-memory.md),
 * and the peak to 160-168 MiB. On one thread, allocation and free meet in one heap; a frame dies
 * young (copied into an upload part right after it is pushed), so the scavenge (about 0.1 ms of
 * CPU) frees the frames before it and their pages serve the next ones: 149-152 MiB against 163-167
 * before, at less CPU (44-54 against 53-61 s; lz4 compresses 64 KiB in well under a millisecond,
 * less than a round trip through the pool costs, as snappy, snappy-framing.ts). `workers` does not
 * apply to lz4.
 */
function lz4BlockCodec(): BlockCodec {
  let frames = 0;
  const collectFrames = youngCollector(LZ4_SCAVENGE_EVERY);
  const frame = (data: Buffer): Buffer => {
    const out = lz4FrameOnThread(data);
    collectFrames(out.length);
    return out;
  };
  return {
    header: () => Buffer.alloc(0),
    block: async (data) => {
      frames++;
      return frame(data);
    },
    // An empty final block only matters when nothing was written: a zero-byte file is not lz4.
    last: async (data) => (data.length || !frames ? frame(data) : Buffer.alloc(0)),
  };
}

/** A block being compressed, with the buffer it was copied into (none for markers and the last block). */
interface InFlight {
  out: Promise<Buffer | Buffer[]>;
  input?: Buffer;
}

/**
 * Compresses blocks concurrently and emits them in input order, with at most `workers` in flight.
 * Block buffers are reused: one is free again once its block is compressed and the block after it
 * has started (which took its last 32 KiB as dictionary), so a tar of any size allocates at most
 * workers + 2 of them.
 */
class ParallelBlockCompressor extends Transform {
  private readonly blocks: BlockAccumulator;
  private readonly inFlight: InFlight[] = [];
  private readonly free: Buffer[] = [];
  private previous: Buffer | undefined;
  /** Whether `previous` is compressed already (then it is free as soon as the next block starts). */
  private previousDone = false;
  bytesOut = 0;
  /** Callers of cutFrame, in order, told when the blocks before their mark are out. */
  protected readonly frameEnds: ((at: number) => void)[] = [];

  constructor(
    private readonly codec: BlockCodec,
    private readonly workers: number,
    private readonly blockSize: number,
  ) {
    super();
    this.blocks = new BlockAccumulator(blockSize, (size) => this.free.pop() ?? Buffer.allocUnsafe(size));
    const header = codec.header();
    this.bytesOut += header.length;
    this.push(header);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (Object.is(chunk, END_FRAME)) {
      const rest = this.blocks.rest();
      this.submit(rest ? [rest] : [])
        .then(() => this.inFlight.push({ out: Promise.resolve(END_FRAME) }))
        .then(() => callback(), callback);
      return;
    }
    const blocks = this.blocks.add(chunk);
    copied(chunk);
    this.submit(blocks).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.blocks.rest() ?? Buffer.alloc(0);
    this.enqueue(this.codec.last(rest, this.previous));
    this.drain(0).then(() => callback(), callback);
  }

  private async submit(blocks: Buffer[]): Promise<void> {
    for (const b of blocks) {
      await this.drain(this.workers - 1);
      this.enqueue(this.codec.block(b, this.previous), b);
      if (this.previous && this.previousDone) this.recycle(this.previous);
      this.previous = b;
      this.previousDone = false;
    }
  }

  private enqueue(out: Promise<Buffer | Buffer[]>, input?: Buffer): void {
    // Rejections are observed by drain(); avoid an unhandled-rejection crash meanwhile.
    out.catch(() => undefined);
    this.inFlight.push({ out, input });
  }

  /** The whole buffer a block (or the partial block before a cut) was copied into, back to the free list. */
  private recycle(block: Buffer): void {
    if (block.byteOffset + this.blockSize <= block.buffer.byteLength) this.free.push(Buffer.from(block.buffer, block.byteOffset, this.blockSize));
  }

  /** Emits finished blocks, oldest first, until at most `keep` remain in flight. */
  private async drain(keep: number): Promise<void> {
    while (this.inFlight.length > keep) {
      const { out: pending, input } = this.inFlight.shift()!;
      const out = await pending;
      if (out === END_FRAME) {
        this.frameEnds.shift()?.(this.bytesOut);
        continue;
      }
      if (input === this.previous) this.previousDone = true;
      else if (input) this.recycle(input);
      for (const piece of Array.isArray(out) ? out : [out]) {
        this.bytesOut += piece.length;
        if (piece.length) this.push(piece);
      }
    }
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

/** For codecs whose blocks are complete frames (lz4): cutFrame compresses the partial block now, as a frame of its own. */
class FramedBlockCompressor extends ParallelBlockCompressor implements FrameCompressor {
  readonly minFrame = MIN_FRAME;

  cutFrame(ended: FrameEnded): boolean {
    this.frameEnds.push((at) => ended(null, at));
    return this.write(END_FRAME, (err) => err && ended(err, NaN));
  }
}

/**
 * zstd-napi's stream, handing each chunk back to its lender (io/lent.ts): libzstd copies its input
 * (its multi-threaded context into its own job buffers) before compressStream2 returns, and
 * zstd-napi's transform loops until the chunk is consumed.
 */
class ZstdStream extends CompressStream {
  override _transform(chunk: Buffer, encoding: string, done: TransformCallback): void {
    super._transform(chunk, encoding, (err, data) => {
      if (!err) copied(chunk);
      done(err, data);
    });
  }
}

/**
 * zstd with cutFrame (zstd-napi's endFrame) and a count of what it pushed. Write callbacks run
 * after later writes may have been compressed, so the offset is read inside the transform of the
 * end marker: zstd-napi compresses it synchronously, and it is the only empty chunk this stream
 * gets (the indexer never writes one).
 */
class FramedZstdStream extends ZstdStream implements FrameCompressor {
  bytesOut = 0;
  readonly minFrame = MIN_FRAME;
  private readonly frameEnds: FrameEnded[] = [];

  cutFrame(ended: FrameEnded): boolean {
    this.frameEnds.push(ended);
    this.endFrame((err) => err && ended(err, NaN));
    return !this.writableNeedDrain;
  }

  override _transform(chunk: Buffer, encoding: string, done: TransformCallback): void {
    super._transform(chunk, encoding, (err, data) => {
      if (!err && chunk.length === 0) this.frameEnds.shift()?.(null, this.bytesOut);
      done(err, data);
    });
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Uint8Array) this.bytesOut += chunk.length;
    return super.push(chunk, encoding);
  }
}

/** Uncompressed: every byte is a restart point, cutFrame only marks where the caller is. */
class FramedPassThrough extends Transform implements FrameCompressor {
  bytesOut = 0;
  readonly minFrame = 0;
  private readonly frameEnds: FrameEnded[] = [];

  cutFrame(ended: FrameEnded): boolean {
    this.frameEnds.push(ended);
    return this.write(END_FRAME, (err) => err && ended(err, NaN));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (Object.is(chunk, END_FRAME)) this.frameEnds.shift()?.(null, this.bytesOut);
    this.bytesOut += chunk.length;
    callback(null, chunk.length ? chunk : undefined);
  }
}

/** Codecs whose concatenated frames every reader of the codec decodes as one stream (gzip's members are not: Python's tarfile stops at the first). */
export const FRAMED_CODECS = ['none', 'lz4', 'zstd'] as const;
export type FramedCodec = (typeof FRAMED_CODECS)[number];

export function isFramedCodec(codec: CodecName): codec is FramedCodec {
  return (FRAMED_CODECS as readonly string[]).includes(codec);
}

/** parallelCompressStream for a codec with restart points: the same stream, plus cutFrame() and bytesOut. */
export function framedCompressStream(codec: FramedCodec, opts: ParallelCompressOptions = {}): FrameCompressor {
  if (codec === 'none') return new FramedPassThrough();
  if (codec === 'lz4') return new FramedBlockCompressor(lz4BlockCodec(), positiveInteger(opts.workers ?? DEFAULT_WORKERS, 'workers'), lz4BlockSize(opts));
  return new FramedZstdStream(zstdParameters(opts));
}

function lz4BlockSize(opts: ParallelCompressOptions): number {
  return Math.min(positiveInteger(opts.blockSize ?? DEFAULT_BLOCK_SIZE, 'blockSize'), LZ4_FRAME_INPUT);
}

function zstdParameters(opts: ParallelCompressOptions): ConstructorParameters<typeof CompressStream>[0] {
  return {
    checksumFlag: true,
    nbWorkers: positiveInteger(opts.workers ?? DEFAULT_WORKERS, 'workers'),
    jobSize: Math.max(positiveInteger(opts.blockSize ?? DEFAULT_BLOCK_SIZE, 'blockSize'), 512 * 1024),
    ...(opts.level === undefined ? {} : { compressionLevel: opts.level }),
  };
}

/** A Transform producing one valid stream of `codec`, compressed using up to `workers` cores. */
export function parallelCompressStream(codec: CodecName, opts: ParallelCompressOptions = {}): Transform {
  const workers = positiveInteger(opts.workers ?? DEFAULT_WORKERS, 'workers');
  const blockSize = positiveInteger(opts.blockSize ?? DEFAULT_BLOCK_SIZE, 'blockSize');
  switch (codec) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return new ParallelBlockCompressor(gzipBlockCodec(opts.level ?? GZIP_LEVEL), workers, blockSize);
    case 'snappy':
      return new ParallelBlockCompressor(snappyBlockCodec, workers, Math.ceil(blockSize / SNAPPY_MAX_CHUNK) * SNAPPY_MAX_CHUNK);
    case 'lz4':
      return new ParallelBlockCompressor(lz4BlockCodec(), workers, lz4BlockSize(opts));
    case 'zstd':
      return new ZstdStream(zstdParameters(opts));
    case 'xz':
      return codecProcess(codec, 'xz', ['-c', '-z', `-T${workers}`, ...levelArg(opts.level, 0, 9, codec)], false);
    case 'bzip2':
      return compressStream('bzip2', opts);
  }
}
