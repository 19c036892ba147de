/**
 * Backup progress: a single rewritten line on a terminal (bytes done / total, rate, ETA), JSON log
 * lines on stderr otherwise. The total is an estimate (pg_database_size over every database), so
 * the percentage is capped below 100 until the copy ends.
 */
import { logger } from '../util/log.js';
import { formatBytes, formatDuration } from '../util/format.js';

export class Progress {
  private done = 0;
  private stored = 0;
  private readonly startedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private phase = 'copying';
  private readonly tty: boolean;

  constructor(
    private readonly backupId: string,
    private total: number,
    opts: { tty?: boolean; quiet?: boolean } = {},
  ) {
    this.tty = opts.tty ?? Boolean(process.stderr.isTTY);
    if (opts.quiet) return;
    this.timer = setInterval(() => this.report(), this.tty ? 500 : 10_000);
    this.timer.unref();
  }

  addBytes(n: number): void {
    this.done += n;
  }

  setStored(n: number): void {
    this.stored = n;
  }

  setPhase(phase: string): void {
    this.phase = phase;
    this.report();
  }

  private snapshot() {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const total = Math.max(this.total, this.done);
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    return { elapsed, rate, total, eta };
  }

  private report(): void {
    if (!this.timer) return;
    const s = this.snapshot();
    if (this.tty) {
      const pct = Math.min(99, Math.floor((this.done / Math.max(1, s.total)) * 100));
      const line = `${this.backupId} ${this.phase}: ${formatBytes(this.done)} / ~${formatBytes(s.total)} (${pct}%) ${formatBytes(s.rate)}/s ETA ${Number.isFinite(s.eta) ? formatDuration(s.eta) : '?'}`;
      process.stderr.write(`\r\x1b[2K${line}`);
    } else {
      logger().info({ event: 'backup-progress', backupId: this.backupId, phase: this.phase, bytesDone: this.done, bytesTotal: s.total, bytesStored: this.stored, bytesPerSecond: Math.round(s.rate), etaSeconds: Number.isFinite(s.eta) ? Math.round(s.eta) : null }, 'backup progress');
    }
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    if (this.tty) process.stderr.write('\r\x1b[2K');
    this.timer = undefined;
  }
}
