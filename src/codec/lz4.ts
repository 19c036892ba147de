/**
 * lz4 frame format (what the `lz4` CLI and Python's lz4.frame read and write).
 *
 * Encoding uses lz4-napi, which only offers whole-buffer frame APIs: we cut the input into 64 KiB
 * blocks and emit one complete frame per block (with content checksum). Concatenated frames are
 * valid lz4 streams for the CLI and for lz4.frame.
 *
 * Decoding cannot use lz4-napi with bounded memory: a frame written by another tool (e.g. barman
 * with Python lz4.frame) may span a whole multi-GB tar and lz4-napi would need it all in memory.
 * So decoding streams through the `lz4` CLI, which also verifies the frame checksums.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type * as Lz4 from 'lz4-napi';
import { lazyRequire } from '../util/lazy-require.js';
import { BlockAccumulator } from './blocks.js';
import { codecProcess } from './child-process.js';

const lz4 = lazyRequire<typeof Lz4>('lz4-napi');

/**
 * Input per frame: lz4_flex's default block size, so a frame is one block. lz4-napi allocates each
 * frame with its own mimalloc on a libuv thread, and the Buffer is freed on the main thread only
 * when V8 collects it; mimalloc keeps what its threads freed, more the larger the allocations. A
 * 1160 MB backup peaked at 290 MB resident with the backup's 1 MiB frames, 205 MB with 256 KiB,
 * 171 MB with 128 KiB and 160 MB with 64 KiB (docs/measurements/backup-memory.md), for 1 % more
 * stored bytes (the frame headers and checksums).
 */
export const LZ4_FRAME_INPUT = 64 * 1024;

const FRAME_OPTIONS = { contentChecksum: true };

/** Compresses one block into a complete, self-checking lz4 frame (on the libuv threadpool). */
export function lz4Frame(block: Buffer): Promise<Buffer> {
  return lz4().compressFrame(block, FRAME_OPTIONS);
}

/** lz4Frame on the calling thread, whose mimalloc heap then both allocates and frees the frame. */
export function lz4FrameOnThread(block: Buffer): Buffer {
  return lz4().compressFrameSync(block, FRAME_OPTIONS);
}

/** Streaming lz4 encoder: at most one block of input (LZ4_FRAME_INPUT) plus its frame in memory. */
export class Lz4FrameEncoder extends Transform {
  private readonly blocks = new BlockAccumulator(LZ4_FRAME_INPUT);
  private framesWritten = 0;

  /**
   * `onThread`: compress on the calling thread rather than on libuv's pool, for a thread that
   * exists to compress (the WAL daemon's compression worker). lz4-napi allocates with its own
   * mimalloc, which keeps what each thread freed in that thread's heap: spread over the pool's 4
   * threads, 40 blocks of 4 MiB left the process at 139 MiB resident, against 86 MiB on one thread.
   */
  constructor(private readonly onThread = false) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.emitFrames(this.blocks.add(chunk)).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.blocks.rest();
    // Empty input still yields one (empty) frame: a zero-byte file is not a valid lz4 stream.
    const last = rest ?? (this.framesWritten ? undefined : Buffer.alloc(0));
    this.emitFrames(last ? [last] : []).then(() => callback(), callback);
  }

  private async emitFrames(blocks: Buffer[]): Promise<void> {
    for (const b of blocks) {
      this.push(this.onThread ? lz4FrameOnThread(b) : await lz4Frame(b));
      this.framesWritten++;
    }
  }
}

export function lz4Decoder(): Transform {
  return codecProcess('lz4', 'lz4', ['-d', '-c'], true);
}
