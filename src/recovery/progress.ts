/**
 * Human progress on stderr, in the spirit of CNPG's full-recovery job log: one timestamped line
 * per step, and periodic lines while bytes move or WAL replays.
 */
import { setting } from '../util/options.js';

export interface Progress {
  step(message: string): void;
}

export function stderrProgress(): Progress {
  // At debug level, milliseconds: what a restore spends between its steps can then be accounted for.
  const end = ['debug', 'trace'].includes(setting('logLevel')) ? 23 : 19;
  return {
    step(message) {
      const t = new Date().toISOString().slice(11, end);
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
