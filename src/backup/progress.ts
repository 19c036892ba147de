/**
 * Backup progress on the shared display (src/io/progress.ts). The total is an estimate
 * (pg_database_size over every database), and off a terminal each period logs a `backup-progress`
 * line with the phase and the bytes stored so far.
 */
import { ProgressDisplay } from '../io/progress.js';
import { logger } from '../util/log.js';

export class Progress {
  private stored = 0;
  private phase = 'copying';
  private readonly display: ProgressDisplay;

  constructor(
    private readonly backupId: string,
    total: number,
    opts: { tty?: boolean; quiet?: boolean } = {},
  ) {
    this.display = new ProgressDisplay({
      label: this.label(),
      total,
      estimate: true,
      ...opts,
      log: (s) =>
        logger().info(
          { event: 'backup-progress', backupId, phase: this.phase, bytesDone: s.done, bytesTotal: s.total, bytesStored: this.stored, bytesPerSecond: Math.round(s.bytesPerSecond), etaSeconds: s.etaSeconds === null ? null : Math.round(s.etaSeconds) },
          'backup progress',
        ),
    });
  }

  addBytes(n: number): void {
    this.display.add(n);
  }

  setStored(n: number): void {
    this.stored = n;
  }

  setPhase(phase: string): void {
    this.phase = phase;
    this.display.setLabel(this.label());
  }

  stop(): void {
    this.display.stop();
  }

  private label(): string {
    return `${this.backupId} ${this.phase}`;
  }
}
