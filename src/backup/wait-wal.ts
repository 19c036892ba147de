/**
 * A backup is usable only with the WAL up to its end position, so pgark waits until the segment
 * holding the end LSN is in the store (under any compression suffix) before committing.
 */
import type pg from 'pg';
import type { ObjectStore } from '../storage/types.js';
import { walKey } from '../catalog/layout.js';
import { CODEC_EXTENSION } from '../codec/types.js';
import { PgarkError } from '../util/errors.js';

const SUFFIXES = new Set(Object.values(CODEC_EXTENSION));

export async function walIsArchived(store: ObjectStore, serverName: string, wal: string): Promise<boolean> {
  const key = walKey(serverName, wal);
  for await (const e of store.list(key)) {
    if (e.object && SUFFIXES.has(e.object.key.slice(key.length))) return true;
  }
  return false;
}

/** What pg_stat_archiver says, for the error message when the WAL never shows up. */
async function archiverStatus(client: pg.Client): Promise<string> {
  try {
    const r = await client.query<{ archived: string | null; at: Date | null; failed: string | null; failedAt: Date | null; mode: string; command: string }>(
      `SELECT last_archived_wal AS archived, last_archived_time AS at, last_failed_wal AS failed, last_failed_time AS "failedAt",
              current_setting('archive_mode') AS mode, current_setting('archive_command') AS command FROM pg_stat_archiver`,
    );
    const s = r.rows[0];
    const parts = [
      `archive_mode=${s.mode}`,
      `last archived WAL: ${s.archived ?? 'none'}${s.at ? ` at ${s.at.toISOString()}` : ''}`,
      `last failure: ${s.failed ? `${s.failed} at ${s.failedAt?.toISOString()}` : 'none'}`,
    ];
    if (!s.command) parts.push('archive_command is empty');
    return parts.join('; ');
  } catch (err) {
    return `pg_stat_archiver unavailable (${(err as Error).message})`;
  }
}

export class WalArchivingError extends PgarkError {}

/** Polls the store until `wal` is there; a WalArchivingError names the archiver's state after `timeoutSeconds`. */
export async function waitForWal(
  store: ObjectStore,
  serverName: string,
  wal: string,
  client: pg.Client,
  timeoutSeconds: number,
  onWait?: (elapsedSeconds: number) => void,
): Promise<void> {
  const started = Date.now();
  let delay = 100;
  for (;;) {
    if (await walIsArchived(store, serverName, wal)) return;
    const elapsed = (Date.now() - started) / 1000;
    if (elapsed >= timeoutSeconds) {
      throw new WalArchivingError(
        `WAL archiving is failing: end WAL ${wal} of the backup is not in ${store.displayUrl} after ${timeoutSeconds}s (${await archiverStatus(client)})`,
        1,
        'check archive_command (pgark wal-archive) and the server log; the backup is not usable without this WAL',
      );
    }
    onWait?.(elapsed);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 2000);
  }
}
