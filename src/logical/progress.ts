/**
 * A one-line progress bar for restores on a terminal. Written here because none of the installed
 * packages draws one and it is a dozen lines; nothing is drawn when stderr is not a TTY.
 */
import { formatBytes } from '../util/format.js';

const WIDTH = 30;

export class ProgressBar {
  private lastDraw = 0;
  private readonly started = Date.now();

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  static forTerminal(total: number, label: string): ProgressBar | undefined {
    return process.stderr.isTTY ? new ProgressBar(total, label) : undefined;
  }

  update(bytes: number): void {
    const now = Date.now();
    if (now - this.lastDraw < 200 && bytes < this.total) return;
    this.lastDraw = now;
    const ratio = this.total > 0 ? Math.min(1, bytes / this.total) : 0;
    const filled = Math.round(ratio * WIDTH);
    const rate = bytes / Math.max(0.001, (now - this.started) / 1000);
    this.out.write(
      `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${formatBytes(bytes)} / ${formatBytes(this.total)} ${formatBytes(rate)}/s `,
    );
  }

  finish(): void {
    this.out.write('\n');
  }
}
