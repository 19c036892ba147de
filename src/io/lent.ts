/**
 * Read buffers lent out and handed back once every byte of them was copied, so that streaming a
 * backup's files allocates a few buffers instead of one per read (each a dead Buffer until the
 * next full collection). The copier says so with copied(): the block compressors, zstd (both
 * codec/), and for an uncompressed tar the S3 part reader (storage/s3-multipart.ts) and the file
 * store once the bytes are written (storage/file.ts), which is why this sits in io, under both.
 */
/** Buffers out on loan (BufferLender), by their memory: how many of the lent bytes are still to be copied, and how each goes back. */
const loans = new WeakMap<ArrayBufferLike, { left: number; back(): void }>();

/**
 * Lends read buffers. A buffer whose bytes are not all copied (cut, joined into another, sent to
 * an encrypting codec, or to a store that does not call copied()) is never lent again: it is left
 * to the garbage collector.
 */
export class BufferLender {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /**
   * A buffer for reading up to `want` bytes: a kept one, else a new one of at most `want` bytes. A
   * small file's read then leaves a small Buffer to the collector when nothing hands it back (an
   * Azure upload, which copies on its own schedule): a thousand files of 8 KiB were a gigabyte of
   * dead 1 MiB Buffers, and V8 ran a full collection for every few dozen of them.
   */
  take(want = this.size): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(Math.min(want, this.size));
  }

  /** Bytes [0, n) of `buf`, lent: `buf` is taken again only after copied() saw all of them (a full-size one). */
  lend(buf: Buffer, n: number): Buffer {
    const keep = buf.length === this.size;
    loans.set(buf.buffer, { left: n, back: () => keep && this.free.length < this.keep && this.free.push(buf) });
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
