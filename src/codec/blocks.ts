/**
 * Cuts a byte stream into blocks of exactly `blockSize` bytes (the last one may be shorter), each
 * copied once into a buffer from `take`: a caller that hands back buffers it is done with (the
 * parallel compressor) allocates none per block, where joining the stream's chunks made a new one
 * every time.
 */
export class BlockAccumulator {
  private block: Buffer | undefined;
  private length = 0;

  constructor(
    readonly blockSize: number,
    private readonly take: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
  ) {
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
  }

  /** Adds bytes; returns the blocks that are now complete. Holds back less than one block. */
  add(chunk: Uint8Array): Buffer[] {
    const blocks: Buffer[] = [];
    for (let at = 0; at < chunk.length; ) {
      this.block ??= this.take(this.blockSize);
      const n = Math.min(chunk.length - at, this.blockSize - this.length);
      this.block.set(chunk.subarray(at, at + n), this.length);
      at += n;
      this.length += n;
      if (this.length === this.blockSize) {
        blocks.push(this.block);
        this.block = undefined;
        this.length = 0;
      }
    }
    return blocks;
  }

  /** The final partial block, if any (a view of its buffer's first bytes). */
  rest(): Buffer | undefined {
    if (!this.length) return undefined;
    const r = this.block!.subarray(0, this.length);
    this.block = undefined;
    this.length = 0;
    return r;
  }
}

/**
 * ArrayBuffers of one size kept for reuse, at most `keep` idle: the decode worker's transfer
 * buffers, which travel between two threads and are handed back instead of left to either
 * thread's collector (decode-thread.ts), and the WAL daemon's decoded-output buffers (wal/restore.ts).
 */
export class ArrayBufferShelf {
  private readonly idle: ArrayBuffer[] = [];
  /** Buffers this shelf has allocated (what a test of reuse observes). */
  made = 0;

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /** An idle buffer, or a new one; one larger than `size` when `min` asks for it (never kept). */
  take(min: number): ArrayBuffer {
    const idle = min <= this.size ? this.idle.pop() : undefined;
    if (idle) return idle;
    this.made++;
    return new ArrayBuffer(Math.max(min, this.size));
  }

  give(ab: ArrayBuffer): void {
    if (ab.byteLength === this.size && this.idle.length < this.keep) this.idle.push(ab);
  }
}
