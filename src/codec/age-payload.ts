/**
 * The age payload's STREAM construction (64 KiB chunks, ChaCha20-Poly1305 with a counter nonce),
 * sealing only: kept apart from codec/age.ts (headers, keys, the age library) so that a stream's
 * sealing thread (seal-worker.ts) starts without loading any of that.
 */
import { createCipheriv } from 'node:crypto';

export const CHUNK = 64 * 1024;
export const TAG = 16;

/**
 * Seals `plain` as consecutive STREAM chunks, the first numbered `counter`, handing each
 * ciphertext and tag to `emit` as the cipher returns them; `final`: the last chunk ends the object
 * (an empty `plain` is then one empty chunk). Node's cipher cannot write into a given buffer, so
 * a stream passes the pieces on as they are: copying them into one buffer per write cost more
 * (a large allocation and a copy) than the extra pieces cost downstream.
 */
export function sealChunks(key: Buffer, plain: Uint8Array, counter: number, final: boolean, emit: (piece: Buffer) => void): void {
  const nonce = Buffer.alloc(12);
  const chunks = final ? Math.max(1, Math.ceil(plain.length / CHUNK)) : plain.length / CHUNK;
  for (let i = 0; i < chunks; i++) {
    nonce.writeUIntBE(counter + i, 5, 6);
    nonce[11] = final && i === chunks - 1 ? 1 : 0;
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    emit(c.update(plain.subarray(i * CHUNK, (i + 1) * CHUNK)));
    c.final();
    emit(c.getAuthTag());
  }
}

/** Bytes of a sealed payload of `length` plaintext bytes (nonce excluded). */
export function sealedLength(length: number): number {
  return length + Math.max(1, Math.ceil(length / CHUNK)) * TAG;
}

/**
 * The payload of one object, fed in writes of any size: each write returns the sealed pieces of
 * the chunks it completes. A full chunk is held back until more input proves it is not the last.
 * Runs on a stream's sealing thread (seal-worker.ts).
 */
export class PayloadSealer {
  private readonly staged = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private counter = 0;

  constructor(private readonly key: Buffer) {}

  add(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const release = Math.floor((this.used + data.length - 1) / CHUNK);
    if (release <= 0) {
      this.used += data.copy(this.staged, this.used);
      return out;
    }
    const emit = (piece: Buffer) => out.push(piece);
    let from = 0;
    const staged = this.used > 0 ? 1 : 0;
    if (staged) {
      from = CHUNK - this.used;
      data.copy(this.staged, this.used, 0, from);
      sealChunks(this.key, this.staged, this.counter++, false, emit);
    }
    // Whole chunks of the write are sealed where they are; only the remainder is staged.
    const inPlace = (release - staged) * CHUNK;
    sealChunks(this.key, data.subarray(from, from + inPlace), this.counter, false, emit);
    this.counter += inPlace / CHUNK;
    this.used = data.copy(this.staged, 0, from + inPlace);
    return out;
  }

  finish(): Buffer[] {
    const out: Buffer[] = [];
    sealChunks(this.key, this.staged.subarray(0, this.used), this.counter, true, (piece) => out.push(piece));
    return out;
  }
}
