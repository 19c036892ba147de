/** The counters of one cell of the fault matrix, and the table they print as. */

export interface Tally {
  cell: string;
  trials: number;
  /** Segments PostgreSQL considers archived that the store lacks and pg_wal no longer has. */
  lost: number;
  /** Stored objects that do not decompress, or whose bytes differ from the source. */
  corrupt: number;
  /** Segments PostgreSQL considers archived (archive_command said 0, or pgark marked them .done) whose object is missing or different. */
  falseAck: number;
  /** Backups whose backup.info says DONE while data.tar or the WAL they need is incomplete or wrong. */
  doneIncomplete: number;
  /** Restores (or wal-restores) that exited 0 on data that was missing, cut short or hostile, or whose result differs. */
  badRestoreOk: number;
  /** Invalid manifests or store objects that a command accepted (exit 0) instead of a clear error. */
  badInputAccepted: number;
  /** Outputs that contained a Secret value. */
  secretLeaks: number;
  /** Commands the runner had to kill because they neither finished nor failed in time. */
  stuck: number;
  /**
   * Differences between pg_stat_archiver.archived_count and the WAL files PostgreSQL marked .done:
   * a .done that archive_command never returned 0 for (renamed behind PostgreSQL's back) skips every
   * command chained after pgark in archive_command and leaves CNPG's metrics short.
   */
  archiverMismatch: number;
  /** pg_stat_archiver.failed_count growth: archive_command calls that failed (PostgreSQL retried them); a measure, not a finding. */
  archiveFailures: number;
  /** Why a trial counted, one line each (cell, trial, what), for the report. */
  notes: string[];
  skipped?: string;
  seconds: number;
}

export type Counter = Exclude<keyof Tally, 'cell' | 'notes' | 'skipped' | 'seconds' | 'trials' | 'archiveFailures'>;

export function newTally(cell: string): Tally {
  return { cell, trials: 0, lost: 0, corrupt: 0, falseAck: 0, doneIncomplete: 0, badRestoreOk: 0, badInputAccepted: 0, secretLeaks: 0, stuck: 0, archiverMismatch: 0, archiveFailures: 0, notes: [], seconds: 0 };
}

/** Counts one finding and keeps its explanation. */
export function count(t: Tally, what: Counter, trial: number, note: string, n = 1): void {
  t[what] += n;
  if (t.notes.length < 40) t.notes.push(`${t.cell} #${trial}: ${what} +${n}: ${note.replace(/\s+/g, ' ').slice(0, 400)}`);
}

const COLUMNS: Array<[string, (t: Tally) => string]> = [
  ['cell', (t) => t.cell],
  ['trials', (t) => (t.skipped ? '-' : String(t.trials))],
  ['lost seg', (t) => String(t.lost)],
  ['corrupt obj', (t) => String(t.corrupt)],
  ['false ack', (t) => String(t.falseAck)],
  ['DONE incomplete', (t) => String(t.doneIncomplete)],
  ['restore OK on bad data', (t) => String(t.badRestoreOk)],
  ['bad input accepted', (t) => String(t.badInputAccepted)],
  ['secret in output', (t) => String(t.secretLeaks)],
  ['stuck', (t) => String(t.stuck)],
  ['archiver count off', (t) => String(t.archiverMismatch)],
  ['archive_command failures', (t) => String(t.archiveFailures)],
  ['s', (t) => t.seconds.toFixed(0)],
];

/** A Markdown table (it reads as plain text too); skipped cells say why. */
export function renderTable(tallies: Tally[]): string {
  const rows = tallies.map((t) => COLUMNS.map(([, f]) => f(t)));
  const lines = [`| ${COLUMNS.map(([h]) => h).join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  const skipped = tallies.filter((t) => t.skipped).map((t) => `- ${t.cell}: skipped: ${t.skipped}`);
  return [...lines, ...(skipped.length ? ['', ...skipped] : [])].join('\n');
}

export function findings(t: Tally): number {
  return t.lost + t.corrupt + t.falseAck + t.doneIncomplete + t.badRestoreOk + t.badInputAccepted + t.secretLeaks + t.stuck + t.archiverMismatch;
}
