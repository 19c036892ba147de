/**
 * zstd decoding with reused decompression contexts. zstd-napi's DecompressStream creates a context
 * per stream, and each context allocates its window (2 MiB and more) the first time it decodes:
 * freed between 128 KiB chunk buffers, those windows are memory glibc cannot give back, so a restore
 * of many tars grew by about one window per tar (1 GB: 165-179 MB peak, 10 GB: 207 MB). A context
 * handed back at the stream's end and reset keeps its window for the next stream instead. Only a
 * context that decoded one frame with a window of at most MAX_KEPT_WINDOW is kept: zstd keeps the
 * largest window it was given, and one `--long=27` stream would otherwise pin 128 MiB while idle.
 */
import { Transform, type TransformCallback } from 'node:stream';
import binding from 'zstd-napi/binding.js';
import type { DCtx } from 'zstd-napi/binding.js';
import { ContextPool } from './zstd-contexts.js';

/** The decoded bytes zstd writes per call at least (one full block): zstd's own recommended output size. */
export const ZSTD_OUT_SIZE = binding.dStreamOutSize();

/** Four idle contexts: one per stream a restore decodes at once (its --jobs) is the usual need. */
const contexts = new ContextPool<DCtx>(() => new binding.DCtx(), 4);
/** zstd's windows up to level 19 on large input (8 MiB); pgark's and barman-cloud's level 3 uses 2 MiB. */
const MAX_KEPT_WINDOW = 8 * 1024 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;
/** A frame's magic number, header descriptor and window descriptor. */
const HEADER_BYTES = 6;

/**
 * The window a frame's header declares, from its first bytes (RFC 8878, 3.1.1.1.2), or undefined
 * where it is not there to read: too few bytes, no zstd magic, or a single-segment frame (whose
 * window is its content size, in a field not parsed here).
 */
export function declaredWindow(head: Uint8Array): number | undefined {
  if (head.length < HEADER_BYTES || Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) !== ZSTD_MAGIC) return undefined;
  if (head[4] & 0x20) return undefined;
  const base = 2 ** ((head[5] >> 3) + 10);
  return base + (base / 8) * (head[5] & 7);
}

/** Contexts idle for reuse (what a test can observe). */
export function idleZstdContexts(): number {
  return contexts.size;
}

/**
 * A Transform that decodes a zstd stream; corrupt input throws from the decoder (streams.ts labels
 * it). `outputBuffer` supplies each output buffer (at least ZSTD_OUT_SIZE bytes), so a caller can decode
 * into buffers it reuses; the decoded chunk is a view of its first bytes.
 */
export class ZstdDecoder extends Transform {
  private dctx: DCtx | undefined = contexts.take();
  /** Whether the input so far ends inside a frame: an end there is a truncated stream. */
  private inFrame = false;
  /** Whether the context may be kept once the stream is done (decided by its first frame's header). */
  private keep: boolean | undefined;
  /** An output buffer zstd wrote nothing into, for the next call. */
  private spare: Buffer | undefined;
  /** The stream's first bytes, until they hold the window descriptor. */
  private head: Buffer = Buffer.alloc(0);
  /** The undecoded rest of an input chunk and its write callback, while the reader catches up. */
  private pending: { src: Buffer; callback: TransformCallback } | undefined;

  constructor(private readonly outputBuffer: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size)) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.keep === undefined) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, HEADER_BYTES - this.head.length)]);
      if (this.head.length === HEADER_BYTES) this.keep = (declaredWindow(this.head) ?? Infinity) <= MAX_KEPT_WINDOW;
    }
    this.decode(chunk, callback);
  }

  override _read(size: number): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending) this.decode(pending.src, pending.callback);
    // Then Transform's own: a chunk finished above the high-water mark left its write callback for
    // the next read, and a continuation that pushed nothing gets no other read to pass it on.
    if (!this.pending) super._read(size);
  }

  /**
   * Decodes `src` until it is all read, or until the reader has enough: the rest then waits for
   * _read. One input chunk can hold far more than memory: 8 KiB of zstd decode to 256 MiB of zeros
   * (a zero-filled file, a WAL segment's unused tail), and pushing it all at once held it all.
   */
  private decode(src: Buffer, callback: TransformCallback): void {
    const dctx = this.dctx!;
    try {
      for (;;) {
        const dst = this.spare ?? this.outputBuffer(ZSTD_OUT_SIZE);
        const [ret, produced, consumed] = dctx.decompressStream(dst, src);
        // Each input chunk ends with a call that may write nothing: its buffer is not garbage.
        this.spare = produced > 0 ? undefined : dst;
        const wantsMore = produced > 0 ? this.push(dst.subarray(0, produced)) : true;
        src = src.subarray(consumed);
        // A second frame may declare a larger window than the first one did.
        if (ret === 0 && src.length > 0) this.keep = false;
        // Done with this chunk once it is all read and zstd had no more output than fitted.
        if (src.length === 0 && (produced < dst.length || ret === 0)) {
          this.inFrame = ret !== 0;
          break;
        }
        if (!wantsMore) {
          this.pending = { src, callback };
          return;
        }
      }
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.release();
    callback(this.inFrame ? new Error('stream ended in the middle of a compressed frame') : null);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    callback(err);
  }

  private release(): void {
    this.pending = undefined;
    const dctx = this.dctx;
    this.dctx = undefined;
    if (dctx && this.keep) contexts.give(dctx);
  }
}
