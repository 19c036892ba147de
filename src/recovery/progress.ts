/**
 * Human progress on stderr, in the spirit of CNPG's full-recovery job log: one timestamped line
 * per step, and periodic lines while bytes move or WAL replays.
 */

export interface Progress {
  step(message: string): void;
}

export function stderrProgress(): Progress {
  return {
    step(message) {
      const t = new Date().toISOString().slice(11, 19);
      process.stderr.write(`[${t}] ${message}\n`);
    },
  };
}

/** Calls `report` every `intervalMs` until stopped; the timer never keeps the process alive. */
export function every(intervalMs: number, report: () => void): { stop(): void } {
  const timer = setInterval(report, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
