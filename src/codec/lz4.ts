/**
 * lz4 frame format (what the `lz4` CLI and Python's lz4.frame read and write).
 *
 * Encoding uses lz4-napi, which only offers whole-buffer frame APIs: we cut the input into 256 KiB
 * blocks and emit one complete frame per block (with content checksum). Concatenated frames are
 * valid lz4 streams for the CLI and for lz4.frame.
 *
 * Decoding cannot use lz4-napi with bounded memory: a frame written by another tool (e.g. barman
 * with Python lz4.frame) may span a whole multi-GB tar and lz4-napi would need it all in memory.
 * So decoding streams through the `lz4` CLI, which also verifies the frame checksums.
 */
import { Transform, type TransformCallback } from 'node:stream';
import lz4 from 'lz4-napi';
import { BlockAccumulator } from './blocks.js';
import { codecProcess } from './child-process.js';

/**
 * Input per frame. lz4-napi allocates each frame with mimalloc on a libuv thread, and the Buffer is
 * freed on the main thread only when V8 collects it; mimalloc's per-thread segments keep such
 * memory long after. 4 MiB frames took a 1 GB backup to 284 MB resident, where 256 KiB ones stay
 * within the memory plan (docs/backups.md "Memory"); the frame header costs 15 bytes of 256 KiB.
 */
export const LZ4_FRAME_INPUT = 256 * 1024;

/** Compresses one block into a complete, self-checking lz4 frame (on the libuv threadpool). */
export function lz4Frame(block: Buffer): Promise<Buffer> {
  return lz4.compressFrame(block, { contentChecksum: true });
}

/** Streaming lz4 encoder: at most one block of input (LZ4_FRAME_INPUT) plus its frame in memory. */
export class Lz4FrameEncoder extends Transform {
  private readonly blocks = new BlockAccumulator(LZ4_FRAME_INPUT);
  private framesWritten = 0;

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
      this.push(await lz4Frame(b));
      this.framesWritten++;
    }
  }
}

export function lz4Decoder(): Transform {
  return codecProcess('lz4', 'lz4', ['-d', '-c'], true);
}
