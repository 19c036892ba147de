/**
 * The one progress display for long work (base backup, logical dump and restore): on a terminal a
 * live bar rewritten in place (bytes, rate, ETA); off a terminal a structured log line every period,
 * in the form the caller gives (scripts and tests parse those), or nothing when it gives none.
 */
import type { Transform } from 'node:stream';
import { formatBytes, formatDuration } from '../util/format.js';
import { count } from './count.js';
import { RateMeter } from './rate.js';

const BAR_WIDTH = 30;
const DRAW_EVERY_MS = 500;
const LOG_EVERY_MS = 10_000;

export interface ProgressSnapshot {
  label: string;
  done: number;
  /** Never below done: an estimate that was too small grows with the work. */
  total: number;
  bytesPerSecond: number;
  /** Seconds left at the current rate; null while nothing moves. */
  etaSeconds: number | null;
}

export interface ProgressOptions {
  /** Shown before the bar; backup puts its id and phase here. */
  label: string;
  total: number;
  /** The total is an estimate (a database size): shown as "~", the percentage held below 100. */
  estimate?: boolean;
  /** Defaults to whether stderr is a terminal. */
  tty?: boolean;
  quiet?: boolean;
  /** Off a terminal: writes one structured line. */
  log?: (s: ProgressSnapshot) => void;
  out?: NodeJS.WritableStream;
}

export class ProgressDisplay {
  private done = 0;
  private label: string;
  private readonly rate = new RateMeter();
  private readonly tty: boolean;
  private readonly out: NodeJS.WritableStream;
  private timer: NodeJS.Timeout | undefined;
  private lastDraw = 0;

  constructor(private readonly opts: ProgressOptions) {
    this.label = opts.label;
    this.tty = opts.tty ?? Boolean(process.stderr.isTTY);
    this.out = opts.out ?? process.stderr;
    if (opts.quiet || (!this.tty && !opts.log)) return;
    this.timer = setInterval(() => this.report(), this.tty ? DRAW_EVERY_MS : LOG_EVERY_MS);
    this.timer.unref();
  }

  add(n: number): void {
    this.done += n;
    this.rate.add(n);
    // A short run must still show its bar: draw on bytes too, not only on the timer.
    if (this.tty && Date.now() - this.lastDraw >= DRAW_EVERY_MS) this.report();
  }

  /** A byte counter to put in a pipeline: every byte through it counts as done. */
  filter(): Transform {
    return count((n) => this.add(n));
  }

  /** A new label (a backup's phase) is reported at once. */
  setLabel(label: string): void {
    this.label = label;
    this.report();
  }

  snapshot(): ProgressSnapshot {
    const total = Math.max(this.opts.total, this.done);
    const bytesPerSecond = this.rate.perSecond();
    return { label: this.label, done: this.done, total, bytesPerSecond, etaSeconds: bytesPerSecond > 0 ? (total - this.done) / bytesPerSecond : null };
  }

  /** Stops the display; on a terminal the last bar stays on its line. */
  stop(): void {
    if (!this.timer) return;
    this.report();
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) this.out.write('\n');
  }

  private report(): void {
    if (!this.timer) return;
    const s = this.snapshot();
    if (!this.tty) {
      this.opts.log?.(s);
      return;
    }
    this.lastDraw = Date.now();
    const ratio = s.total > 0 ? s.done / s.total : 0;
    const pct = Math.floor(ratio * 100);
    const shown = this.opts.estimate ? Math.min(99, pct) : pct;
    const filled = Math.round(Math.min(1, ratio) * BAR_WIDTH);
    const eta = s.etaSeconds === null ? '?' : formatDuration(s.etaSeconds);
    this.out.write(
      `\r\x1b[2K${s.label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(shown).padStart(3)}% ` +
        `${formatBytes(s.done)} / ${this.opts.estimate ? '~' : ''}${formatBytes(s.total)} ${formatBytes(s.bytesPerSecond)}/s ETA ${eta}`,
    );
  }
}
