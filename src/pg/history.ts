/**
 * Timeline history files (NNNNNNNN.history): one line per ancestor timeline,
 * "parentTLI<TAB>switchpoint LSN<TAB>reason", as PostgreSQL's writeTimeLineHistory writes them.
 * Blank lines and lines starting with '#' are ignored, as readTimeLineHistory does.
 */
import { UserError } from '../util/errors.js';
import { parseLsn, type Lsn } from './lsn.js';

export interface TimelineHistoryEntry {
  /** The timeline that ended. */
  timeline: number;
  /** First LSN that belongs to the next timeline. */
  switchpoint: Lsn;
  /** Free text, e.g. "no recovery target specified"; may be empty. */
  reason: string;
}

export function parseHistoryFile(text: string, source = 'history file'): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.trimStart().startsWith('#')) return;
    const where = `${source} line ${i + 1}`;
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)(?:\s+(.*))?$/.exec(line);
    if (!m) throw new UserError(`${where}: "${line}" is not "timeline<TAB>LSN<TAB>reason"`, 'the file may be corrupt or not a timeline history file');
    const timeline = Number(m[1]);
    const switchpoint = parseLsn(m[2]!, where);
    const prev = entries.at(-1);
    if (timeline < 1 || timeline > 0xffffffff) throw new UserError(`${where}: timeline ${m[1]} is out of range`);
    if (prev && timeline <= prev.timeline) throw new UserError(`${where}: timeline ${timeline} does not follow ${prev.timeline} (timelines must increase)`);
    if (prev && switchpoint < prev.switchpoint) throw new UserError(`${where}: switchpoint ${m[2]} is before the previous one`);
    entries.push({ timeline, switchpoint, reason: (m[3] ?? '').trim() });
  });
  return entries;
}

/** The timeline that `lsn` belongs to in the history of `currentTimeline`, given its parsed history. */
export function timelineAtLsn(history: TimelineHistoryEntry[], currentTimeline: number, lsn: Lsn): number {
  for (const e of history) if (lsn < e.switchpoint) return e.timeline;
  return currentTimeline;
}
