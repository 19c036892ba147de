/**
 * Block maps as a backup computes them: a file's bytes cut into fixed-size blocks, each hashed
 * (truncated SHA-256) as it streams by, so the next incremental can tell which blocks changed
 * without the parent's bytes. Memory: one block (a copy only when it straddles two read chunks)
 * plus BLOCK_HASH_BYTES per block of the file being read, in one buffer (BlockHashes).
 */
import { createHash } from 'node:crypto';
import { BLOCK_HASH_BYTES, blockCount } from '../catalog/incremental.js';
import type { SourceEntry } from './types.js';

/**
 * Block size of new block maps. Measured with bench/backup.ts --incremental (docs/backups.md):
 * 8 KiB pages cost a 512-byte tar header per stored page and SHA-256 at a third of the speed,
 * for no fewer stored bytes on clustered changes.
 */
export const BLOCK_SIZE = 128 * 1024;

/**
 * A file's block hashes (truncated SHA-256), written one after another into a single buffer sized
 * for the file's blocks. A Buffer per block held a 1 GiB file's 8192 hashes as 8192 objects until
 * its last block: alive for the seconds the file takes to read, so V8 promoted them, and a 10 GB
 * backup's old space grew by ~9 MiB of them over the run (docs/measurements/backup-memory.md).
 * Each digest now dies young, copied here.
 */
export class BlockHashes {
  private readonly bytes: Buffer;
  private count = 0;

  constructor(fileSize: number, blockSize: number) {
    this.bytes = Buffer.allocUnsafe(blockCount(fileSize, blockSize) * BLOCK_HASH_BYTES);
  }

  /** Hashes the file's next block; returns its hash (a view of this map). */
  add(block: Uint8Array): Buffer {
    const at = this.count++ * BLOCK_HASH_BYTES;
    createHash('sha256').update(block).digest().copy(this.bytes, at, 0, BLOCK_HASH_BYTES);
    return this.bytes.subarray(at, at + BLOCK_HASH_BYTES);
  }

  /** The hashes added so far, as BlockMap.hashes. */
  base64(): string {
    return this.bytes.toString('base64', 0, this.count * BLOCK_HASH_BYTES);
  }
}

/**
 * Exactly `size` bytes of `body` in blocks of `blockSize` (the last one shorter): a body that
 * grew is cut and one that shrank is zero-padded, as the archive writer stores it.
 */
export async function* blocksOf(body: AsyncIterable<Uint8Array>, size: number, blockSize: number): AsyncIterable<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let sent = 0;
  const want = () => Math.min(blockSize, size - sent);
  for await (const raw of body) {
    let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    while (chunk.length > 0 && sent < size) {
      const take = Math.min(chunk.length, want() - pendingBytes);
      pending.push(chunk.subarray(0, take));
      pendingBytes += take;
      chunk = chunk.subarray(take);
      if (pendingBytes === want()) {
        const block = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        sent += block.length;
        yield block;
      }
    }
  }
  while (sent < size) {
    const block = Buffer.concat([...pending, Buffer.alloc(want() - pendingBytes)]);
    pending = [];
    pendingBytes = 0;
    sent += block.length;
    yield block;
  }
}

/**
 * The entry with a body that hashes its blocks as the archive writer reads them; `done` gets the
 * hashes (base64, BlockMap.hashes) once the last block went by.
 */
export function hashingEntry(entry: Extract<SourceEntry, { type: 'file' }>, done: (hashes: string) => void): SourceEntry {
  async function* body(): AsyncIterable<Uint8Array> {
    const hashes = new BlockHashes(entry.size, BLOCK_SIZE);
    for await (const block of blocksOf(entry.body, entry.size, BLOCK_SIZE)) {
      hashes.add(block);
      yield block;
    }
    done(hashes.base64());
  }
  return { ...entry, body: body() };
}
