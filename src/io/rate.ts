/**
 * Transfer rate over the last few seconds, so the rate and ETA a progress display shows follow a
 * change of speed (the start of a slow tablespace, a throttled store) instead of the run's average.
 */
const WINDOW_MS = 10_000;
/** Samples closer together are merged: memory stays a few dozen numbers however fast bytes come. */
const SLOT_MS = 250;

export class RateMeter {
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  add(bytes: number): void {
    const at = this.now();
    const last = this.samples[this.samples.length - 1];
    if (last && at - last.at < SLOT_MS) last.bytes += bytes;
    else this.samples.push({ at, bytes });
    this.trim(at);
  }

  /** Bytes per second over the window; 0 before anything moved. */
  perSecond(): number {
    const at = this.now();
    this.trim(at);
    if (this.samples.length === 0) return 0;
    const bytes = this.samples.reduce((n, s) => n + s.bytes, 0);
    // At least one slot long: a first burst must not look infinitely fast.
    const span = Math.max(SLOT_MS, at - this.samples[0].at);
    return (bytes * 1000) / span;
  }

  private trim(at: number): void {
    while (this.samples.length > 0 && at - this.samples[0].at > WINDOW_MS) this.samples.shift();
  }
}
