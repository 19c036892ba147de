/**
 * What PostgreSQL still has to archive, read from pg_wal/archive_status of a data directory:
 * the .ready and .done markers and the age of the oldest .ready. The agent's and the CNPG-I
 * plugin's metrics both read it at scrape time (the files are the truth; nothing is cached).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ArchiveStatusCounts {
  ready: number;
  done: number;
  /** Age in seconds of the oldest .ready file (0 when none). */
  oldestReadySeconds: number;
}

/** Counts pg_wal/archive_status/*.ready and *.done (what PostgreSQL still has to archive, and has archived). */
export async function archiveStatusCounts(pgdata: string, now = Date.now()): Promise<ArchiveStatusCounts> {
  const dir = join(pgdata, 'pg_wal', 'archive_status');
  const names = await readdir(dir).catch(() => [] as string[]);
  const ready = names.filter((n) => n.endsWith('.ready')).sort();
  const done = names.filter((n) => n.endsWith('.done')).length;
  let oldestReadySeconds = 0;
  // WAL names sort in archiving order, so the first .ready is the oldest still waiting.
  for (const name of ready) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (!s) continue;
    oldestReadySeconds = Math.max(0, (now - s.mtimeMs) / 1000);
    break;
  }
  return { ready: ready.length, done, oldestReadySeconds };
}
