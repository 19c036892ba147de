/**
 * WAL.Restore's short memory of where the archive ends: segments a prefetch of one restore
 * session (data directory + store) found missing, so that PostgreSQL asking for one of them
 * moments later is answered OUT_OF_RANGE at once, without another store round trip.
 *
 * This is CNPG's end-of-wal-stream flag (internal/cmd/manager/walrestore): the instance manager
 * sets it when a prefetch finds a file missing, and the next restore that is not in the spool
 * fails once, resetting it, "to let Postgres try switching to streaming replication". CNPG uses
 * it only where streaming is possible (a replica, or a designated primary whose source has
 * connection parameters), never for pg_rewind and never while the first instance is created
 * (a restore Job): there a missing file ends recovery, so it must be a real answer from the store.
 */
import type { PluginCluster } from './config.js';

/** How long a missing segment is believed missing: PostgreSQL asks for the next one within moments. */
export const END_OF_ARCHIVE_TTL_MS = 5000;

export class EndOfArchive {
  /** session + "\n" + WAL name -> when the knowledge expires (ms since the epoch). */
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly ttlMs = END_OF_ARCHIVE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A prefetch of `session` found `name` absent from the store. */
  found(session: string, name: string): void {
    this.forgetExpired();
    this.missing.set(`${session}\n${name}`, this.now() + this.ttlMs);
  }

  /** Whether `name` was found missing moments ago in `session`; answered once, as CNPG's flag is reset when read. */
  take(session: string, name: string): boolean {
    this.forgetExpired();
    return this.missing.delete(`${session}\n${name}`);
  }

  private forgetExpired(): void {
    const now = this.now();
    for (const [key, expires] of this.missing) if (expires <= now) this.missing.delete(key);
  }
}

interface StreamingView {
  status?: { currentPrimary?: string };
  spec: { replica?: { enabled?: boolean; source?: string }; externalClusters?: { name: string; connectionParameters?: unknown }[] };
}

/**
 * CNPG's isStreamingAvailable: no primary yet (a restore Job) means no; a pod that is not the
 * current primary is a replica and streams; the designated primary of a replica cluster streams
 * when its source has connection parameters; a primary streams from nobody.
 */
export function streamingAvailable(cluster: PluginCluster, podName: string | undefined): boolean {
  const c = cluster as unknown as StreamingView;
  const primary = c.status?.currentPrimary;
  if (!primary) return false;
  if (primary !== podName) return true;
  const replica = c.spec.replica;
  if (!replica?.enabled) return false;
  return c.spec.externalClusters?.find((e) => e.name === replica.source)?.connectionParameters !== undefined;
}
