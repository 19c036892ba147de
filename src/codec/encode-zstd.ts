/**
 * zstd encoding with reused compression contexts (zstd-contexts.ts). zstd-napi's CompressStream
 * creates a context per stream, and the WAL daemon's compression worker encodes one segment after
 * another: each context allocated its window and match tables (level 3: a 2 MiB window, 2 MiB of
 * input buffer, 768 KiB of tables) on the segment's first chunk, and freed, that memory stayed in
 * the worker's heap among the output pieces allocated meanwhile. A context handed back at the
 * stream's end (reset, its parameters kept) encodes the next segment instead. The frames are
 * byte for byte what a fresh context writes.
 */
import { Transform, type TransformCallback } from 'node:stream';
import binding from 'zstd-napi/binding.js';
import type { CCtx } from 'zstd-napi/binding.js';
import { ContextPool } from './zstd-contexts.js';

/** zstd's recommended output size per call (one full block and its header). */
const OUT_SIZE = binding.cStreamOutSize();

/**
 * Levels whose contexts are kept idle. Up to level 6, zstd's parameters for large input use a
 * 2 MiB window and at most 3 MiB of tables; from level 7 the tables grow to tens of MiB (level 19:
 * an 8 MiB window and 80 MiB of tables), which an idle context should not pin.
 */
const MAX_KEPT_LEVEL = 6;
/** Idle contexts per level: one per stream encoded at once (the compression worker runs one job at a time). */
const KEEP = 2;
const pools = new Map<number, ContextPool<CCtx>>();

function contexts(level: number): ContextPool<CCtx> {
  let pool = pools.get(level);
  if (!pool) {
    const create = (): CCtx => {
      const cctx = new binding.CCtx();
      cctx.setParameter(binding.CParameter.compressionLevel, level);
      cctx.setParameter(binding.CParameter.checksumFlag, 1);
      return cctx;
    };
    pool = new ContextPool(create, level <= MAX_KEPT_LEVEL ? KEEP : 0);
    pools.set(level, pool);
  }
  return pool;
}

/** Compression contexts idle for reuse, all levels together (what a test can observe). */
export function idleZstdCompressors(): number {
  let n = 0;
  for (const pool of pools.values()) n += pool.size;
  return n;
}

/** A Transform writing one zstd frame (with its checksum) of everything written to it, at `level` (default zstd's 3). */
export class ZstdEncoder extends Transform {
  private readonly pool: ContextPool<CCtx>;
  private cctx: CCtx | undefined;
  private out = Buffer.allocUnsafe(OUT_SIZE);

  constructor(level: number = binding.defaultCLevel()) {
    super();
    this.pool = contexts(level);
    this.cctx = this.pool.take();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    callback(this.compress(chunk, binding.EndDirective.continue));
  }

  override _flush(callback: TransformCallback): void {
    const err = this.compress(Buffer.alloc(0), binding.EndDirective.end);
    this.release();
    callback(err);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    callback(err);
  }

  /** Feeds src to zstd, pushing each output piece; the error zstd threw, if any. */
  private compress(src: Buffer, directive: binding.EndDirective): Error | undefined {
    const cctx = this.cctx!;
    try {
      for (;;) {
        const [remaining, produced, consumed] = cctx.compressStream2(this.out, src, directive);
        if (produced > 0) {
          // The piece pushed belongs to the stages after this one now.
          this.push(this.out.subarray(0, produced));
          this.out = Buffer.allocUnsafe(Math.max(OUT_SIZE, remaining));
        }
        src = src.subarray(consumed);
        if (src.length === 0 && (directive === binding.EndDirective.continue || remaining === 0)) return undefined;
      }
    } catch (err) {
      return err as Error;
    }
  }

  private release(): void {
    const cctx = this.cctx;
    this.cctx = undefined;
    if (cctx) this.pool.give(cctx);
  }
}
