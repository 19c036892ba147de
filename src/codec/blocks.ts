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
 * thread's collector (decode-thread.ts).
 */
export class ArrayBufferShelf {
  private readonly idle: ArrayBuffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /** An idle buffer, or a new one; one larger than `size` when `min` asks for it (never kept). */
  take(min: number): ArrayBuffer {
    if (min > this.size) return new ArrayBuffer(min);
    return this.idle.pop() ?? new ArrayBuffer(this.size);
  }

  give(ab: ArrayBuffer): void {
    if (ab.byteLength === this.size && this.idle.length < this.keep) this.idle.push(ab);
  }
}

/** Buffers out on loan (BufferLender), by their memory: how many of the lent bytes are still to be copied, and how each goes back. */
const loans = new WeakMap<ArrayBufferLike, { left: number; back(): void }>();

/**
 * Read buffers that come back once the block compressor copied their bytes, so that reading a
 * backup's files allocates a few buffers instead of one per read (each a dead Buffer until the
 * next full collection). A buffer whose bytes are not all copied (cut, joined into another, or
 * sent to a codec that does not copy) is never lent again: it is left to the garbage collector.
 */
export class BufferLender {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Bytes [0, n) of `buf`, lent: `buf` is taken again only after copied() saw all of them. */
  lend(buf: Buffer, n: number): Buffer {
    loans.set(buf.buffer, { left: n, back: () => this.free.length < this.keep && this.free.push(buf) });
    return buf.subarray(0, n);
  }
}

/** Tells a chunk's lender, if any, that these bytes were copied and will not be read again. */
export function copied(chunk: Uint8Array): void {
  const loan = loans.get(chunk.buffer);
  if (!loan) return;
  loan.left -= chunk.length;
  if (loan.left > 0) return;
  loans.delete(chunk.buffer);
  loan.back();
}
