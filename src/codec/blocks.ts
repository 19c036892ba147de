/** Cuts a byte stream into blocks of exactly `blockSize` bytes (the last one may be shorter). */
export class BlockAccumulator {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(readonly blockSize: number) {
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
  }

  /** Adds bytes; returns the blocks that are now complete. Holds back less than one block. */
  add(chunk: Buffer): Buffer[] {
    this.parts.push(chunk);
    this.length += chunk.length;
    if (this.length < this.blockSize) return [];
    const all = Buffer.concat(this.parts, this.length);
    const blocks: Buffer[] = [];
    let off = 0;
    for (; all.length - off >= this.blockSize; off += this.blockSize) blocks.push(all.subarray(off, off + this.blockSize));
    const rest = all.subarray(off);
    this.parts = rest.length ? [rest] : [];
    this.length = rest.length;
    return blocks;
  }

  /** The final partial block, if any. */
  rest(): Buffer | undefined {
    if (!this.length) return undefined;
    const r = Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    return r;
  }
}
