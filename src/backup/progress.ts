/**
 * Backup progress on the shared display (src/io/progress.ts). The total is an estimate
 * (pg_database_size over every database), and off a terminal each period logs a `backup-progress`
 * line with the phase and the bytes stored so far. It also times each phase, for the
 * `backup-done` log line: where a backup's seconds went (checkpoint, copy, WAL wait ...).
 */
import { ProgressDisplay } from '../io/progress.js';
import { logger } from '../util/log.js';

export class Progress {
  private stored = 0;
  private phase = 'copying';
  private phaseKey = 'setup';
  private phaseStarted = Date.now();
  /** Seconds spent in each phase so far, by key. */
  readonly phaseSeconds: Record<string, number> = {};
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

  /** Enters a phase: `phase` is what the display shows, `key` what phaseSeconds counts it under. */
  setPhase(phase: string, key: string): void {
    this.endPhase();
    this.phaseKey = key;
    this.phase = phase;
    this.display.setLabel(this.label());
  }

  private endPhase(): void {
    const now = Date.now();
    this.phaseSeconds[this.phaseKey] = (this.phaseSeconds[this.phaseKey] ?? 0) + (now - this.phaseStarted) / 1000;
    this.phaseStarted = now;
  }

  stop(): void {
    this.endPhase();
    this.display.stop();
  }

  private label(): string {
    return `${this.backupId} ${this.phase}`;
  }
}
