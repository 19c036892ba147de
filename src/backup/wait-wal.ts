/**
 * A backup is usable only with the WAL up to its end position, so pgark waits until the last
 * segment the backup needs is in the store (under any compression suffix) before committing.
 *
 * Waiting is worth it only while archiving can deliver that segment. On a primary, pg_stat_archiver
 * and the archive settings say within seconds when it cannot: archiving switched off, PostgreSQL
 * reporting the segment (or a later one) archived while the store does not have it (archive_command
 * stores elsewhere, or nowhere), or archive_command failing on every retry. Those end the wait
 * with the reason; a slow but advancing archiver is waited for up to the timeout. A standby's
 * WAL is archived by its primary, whose archiver this session cannot see, so there only the
 * timeout applies.
 */
import type pg from 'pg';
import type { ObjectStore } from '../storage/types.js';
import { walKey } from '../catalog/layout.js';
import { splitCodecSuffix } from '../codec/index.js';
import { parseLsn } from '../pg/lsn.js';
import { walNameParts, walSegmentName } from '../pg/wal-names.js';
import { PgarkError } from '../util/errors.js';

/**
 * PostgreSQL archives its attempts in rounds of three (pgarch.c NUM_ARCHIVE_RETRIES) before it
 * pauses: a whole round failing with nothing archived in between is a failure, not a blip.
 */
const FAILURES_IN_A_ROW = 3;

const FIX_HINT = "set archive_command to pgark wal-archive (or CNPG's archiver) for this store and server name, and check the server log";

export async function walIsArchived(store: ObjectStore, serverName: string, wal: string): Promise<boolean> {
  const key = walKey(serverName, wal);
  for await (const e of store.list(key)) {
    if (e.object && splitCodecSuffix(e.object.key).base === key) return true;
  }
  return false;
}

/**
 * The last segment a backup ending at `stopLsn` needs: the one holding the byte before the stop
 * position (PostgreSQL's XLByteToPrevSeg). When the stop LSN is exactly on a segment boundary,
 * barman's end_wal names the next, still empty segment, which nothing closes until more WAL is
 * written; waiting for it would stall until archive_timeout or --wal-timeout.
 */
export function lastSegmentOfBackup(timeline: number, stopLsn: string, segmentSize: number): string {
  return walSegmentName(timeline, parseLsn(stopLsn) - 1n, segmentSize);
}

interface ArchiverState {
  mode: string;
  command: string;
  /** archive_library (PostgreSQL 15+); '' before. */
  library: string;
  archivedCount: number;
  lastArchived: string | null;
  lastArchivedAt: Date | null;
  failedCount: number;
  lastFailed: string | null;
  lastFailedAt: Date | null;
}

async function readArchiver(client: pg.Client): Promise<ArchiverState> {
  const r = await client.query<ArchiverState & { archivedCount: string; failedCount: string; library: string | null }>(
    `SELECT current_setting('archive_mode') AS mode, current_setting('archive_command') AS command,
            current_setting('archive_library', true) AS library,
            archived_count AS "archivedCount", last_archived_wal AS "lastArchived", last_archived_time AS "lastArchivedAt",
            failed_count AS "failedCount", last_failed_wal AS "lastFailed", last_failed_time AS "lastFailedAt"
       FROM pg_stat_archiver`,
  );
  const s = r.rows[0];
  return { ...s, library: s.library ?? '', archivedCount: Number(s.archivedCount), failedCount: Number(s.failedCount) };
}

function describe(s: ArchiverState): string {
  return [
    `archive_mode=${s.mode}`,
    `last archived WAL: ${s.lastArchived ?? 'none'}${s.lastArchivedAt ? ` at ${s.lastArchivedAt.toISOString()}` : ''}`,
    `last failure: ${s.lastFailed ? `${s.lastFailed} at ${s.lastFailedAt?.toISOString()}` : 'none'}`,
  ].join('; ');
}

/** Why a primary with these settings never archives anything; undefined when it can. */
function notArchiving(s: ArchiverState): string | undefined {
  if (s.mode === 'off') return 'archive_mode is off, so PostgreSQL archives no WAL';
  if (!s.command.trim() && !s.library.trim()) return 'archive_mode is on but archive_command and archive_library are empty, so PostgreSQL archives no WAL';
  return undefined;
}

/** The segment a pg_stat_archiver name stands for (a .backup file counts as its segment); undefined for .history. */
function segmentOf(name: string | null): string | undefined {
  return name === null ? undefined : walNameParts(name)?.segmentName?.toUpperCase();
}

export class WalArchivingError extends PgarkError {}

/**
 * Refuses, before anything is copied, a backup of a primary whose settings mean its end WAL can
 * never be archived.
 */
export async function checkArchivingConfigured(client: pg.Client): Promise<void> {
  const reason = notArchiving(await readArchiver(client));
  if (reason) throw new WalArchivingError(`cannot take a base backup: ${reason}, and a backup is not usable without its WAL`, 1, FIX_HINT);
}

/** How often the archiver's state is read while waiting: a local query, cheap enough to ask often. */
const ARCHIVER_POLL_MS = 100;
/** The store is listed when the archiver reports progress, and at least this often regardless (a standby's archiver is not the one storing). */
const LIST_EVERY_MS = 2000;

/**
 * Waits until `wal` is in the store. Throws a WalArchivingError as soon as the primary's
 * archiver shows it cannot get there, or after `timeoutSeconds`.
 *
 * The archiver's state is read every 100 ms and the store listed whenever it changed, so the wait
 * ends within about one archive_command of the segment being stored (PostgreSQL's own
 * pg_backup_stop, which barman 3.4 calls with its default wait_for_archive, waits the same way),
 * while the store sees one listing per archived segment, not one per poll.
 */
export async function waitForWal(store: ObjectStore, serverName: string, wal: string, client: pg.Client, timeoutSeconds: number, primary: boolean): Promise<void> {
  const started = Date.now();
  const fail = (why: string, s: ArchiverState) =>
    new WalArchivingError(`WAL archiving is failing: end WAL ${wal} of the backup is not in ${store.displayUrl}: ${why} (${describe(s)})`, 1, FIX_HINT);
  let archivedCount = -1;
  let failedBefore = 0;
  let listedCount = -1;
  let listedAt = -Infinity;
  for (;;) {
    // Read before listing: a segment PostgreSQL reports archived was stored before this listing, if it was stored here at all.
    const s = await readArchiver(client);
    if (s.archivedCount !== listedCount || Date.now() - listedAt >= LIST_EVERY_MS) {
      listedCount = s.archivedCount;
      listedAt = Date.now();
      if (await walIsArchived(store, serverName, wal)) return;
      const archived = segmentOf(s.lastArchived);
      if (primary && archived !== undefined && archived >= wal) {
        throw fail(`PostgreSQL reports ${s.lastArchived} archived, so archive_command (or archive_library) stores WAL somewhere else`, s);
      }
    }
    if (primary) {
      const reason = notArchiving(s);
      if (reason) throw fail(reason, s);
      // Failures count from the last success seen, so a retry that went through clears them.
      if (s.archivedCount !== archivedCount) {
        archivedCount = s.archivedCount;
        failedBefore = s.failedCount;
      }
      if (s.failedCount - failedBefore >= FAILURES_IN_A_ROW) {
        throw fail(`archive_command failed ${s.failedCount - failedBefore} times in a row with nothing archived in between`, s);
      }
    }
    const elapsed = (Date.now() - started) / 1000;
    if (elapsed >= timeoutSeconds) throw fail(`still missing after ${timeoutSeconds}s`, s);
    await new Promise((r) => setTimeout(r, ARCHIVER_POLL_MS));
  }
}
