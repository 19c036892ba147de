/**
 * Splitting PGDATA into barman-cloud's tar parts (data.tar, data_0001.tar, ...) so that a restore
 * inflates them on several cores at once (a gzip stream has no restart points: one tar is one
 * core). Only the plan lives here; run.ts writes the parts.
 *
 * barman's rules kept: a file is never split across parts, each part is a complete tar, and
 * global/pg_control (read after every other file) and backup_label go into data.tar, which is
 * finished last. Directories and links go into data.tar too; every restorer (pgark's extract.ts,
 * Python's tarfile) creates a missing parent itself, so a part may be extracted before data.tar.
 *
 * Memory: the plan holds every entry's metadata (not its bytes: a local source's bodies are read
 * only when written), about a few hundred bytes per file of the data directory.
 */
import { setting } from '../util/options.js';
import type { SourceEntry } from './types.js';

/** Each part must reach this many bytes: smaller databases (every test's) keep one data.tar. */
export const DEFAULT_PART_MIN = 256 * 1024 * 1024;

export interface PartPlan {
  /** Entries per part, part 0 being data.tar; each keeps the walk's order (neighbouring files stay together). */
  parts: SourceEntry[][];
  /** The source's last entry (global/pg_control), for data.tar once every part's files are read. */
  last: SourceEntry;
}

/** barman's name of part `n` of an archive. */
export function partName(archive: string, n: number): string {
  return n === 0 ? archive : `${archive}_${String(n).padStart(4, '0')}`;
}

/**
 * Reads the data archive's entries and, when the files add up to at least two parts of
 * PGARK_BACKUP_PART_MIN, deals them into min(maxParts, size / minimum) parts: largest file first,
 * each to the part with the fewest bytes so far (parts within one largest file of each other).
 */
export async function planParts(entries: AsyncIterable<SourceEntry>, maxParts: number): Promise<PartPlan> {
  const all: SourceEntry[] = [];
  for await (const e of entries) all.push(e);
  const last = all.pop();
  if (!last) throw new Error('the data directory archive has no entries');
  const size = (e: SourceEntry) => (e.type === 'file' ? e.size : 0);
  const total = all.reduce((n, e) => n + size(e), 0);
  const count = Math.max(1, Math.min(maxParts, Math.floor(total / (setting('backupPartMin') ?? DEFAULT_PART_MIN))));
  if (count === 1) return { parts: [all], last };
  const load = new Array<number>(count).fill(0);
  const partOf = new Map<SourceEntry, number>();
  for (const e of all.filter((x) => x.type === 'file').sort((a, b) => size(b) - size(a))) {
    const least = load.indexOf(Math.min(...load));
    load[least] += size(e);
    partOf.set(e, least);
  }
  const parts = load.map((): SourceEntry[] => []);
  for (const e of all) parts[partOf.get(e) ?? 0].push(e);
  return { parts, last };
}
