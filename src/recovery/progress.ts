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

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Calls `report` every `intervalMs` until stopped; the timer never keeps the process alive. */
export function every(intervalMs: number, report: () => void): { stop(): void } {
  const timer = setInterval(report, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
