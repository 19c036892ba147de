/**
 * Idle zstd contexts kept for the next stream. A zstd context allocates its working memory (window,
 * match tables, buffers: megabytes) the first time it runs; one made per stream and freed after it
 * leaves that memory in glibc's heap between the small chunk buffers allocated meanwhile, where it
 * cannot be given back, so a process grows by about one context per stream. A context handed back
 * here is reset to a clean session (keeping its parameters) and serves the next stream instead.
 */
import binding from 'zstd-napi/binding.js';

/** What zstd-napi's CCtx and DCtx have in common here. */
interface ZstdContext {
  reset(directive: binding.ResetDirective): void;
}

export class ContextPool<C extends ZstdContext> {
  private readonly idle: C[] = [];

  /** `keep`: contexts kept idle at most, one per stream the process runs at once being the usual need. */
  constructor(
    private readonly create: () => C,
    private readonly keep: number,
  ) {}

  take(): C {
    return this.idle.pop() ?? this.create();
  }

  /** Keeps ctx for the next take(); a stream may end (or fail) inside a frame, so it starts the next from a clean session. */
  give(ctx: C): void {
    if (this.idle.length >= this.keep) return;
    ctx.reset(binding.ResetDirective.sessionOnly);
    this.idle.push(ctx);
  }

  /** Contexts idle now (what a test can observe: zstd-napi gives no other view of them). */
  get size(): number {
    return this.idle.length;
  }
}
