/**
 * The WAL daemon of a `restore --start`, started while the data step runs, so that its Node start,
 * the listing of the history files PostgreSQL probes first and the prefetch of the backup's first
 * segments overlap the download instead of following it (about 1.5 s at load 2,
 * docs/measurements/recovery-time.md).
 * Its private directory (default $PGDATA/pgark-wal) lies inside the directory being extracted: a
 * backup's own copy of it (a barman-cloud backup may hold one; it is disposable by design,
 * wal/runtime.ts) is kept out of the extraction, and a failed data step stops the daemon and waits
 * for its exit before anything is removed, so it cannot write into a directory being deleted.
 */
import { chownSync, mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import type { RunAs } from '../pg/local-server.js';
import type { BackupObject } from '../catalog/backup-objects.js';
import type { ConfigRef } from '../wal/protocol.js';
import { warmRestore } from '../wal/client.js';
import { stopWalDaemon, walRuntime } from '../wal/runtime.js';

export interface EarlyWal {
  /** Why the daemon could not prefetch (the restore works either way), undefined when it did; never rejects. */
  warming: Promise<string | undefined>;
  /** When the daemon had listed the history files PostgreSQL probes first (Date.now()), once warming says it did. */
  warmedAt?: number;
  /** Stops the daemon and waits for its exit (a failed data step). */
  stop(): Promise<void>;
}

export function startEarlyWal(pgdata: string, walRef: ConfigRef, first: string, segmentSize: number, who: RunAs | undefined): EarlyWal {
  const rt = walRuntime(pgdata);
  // The daemon runs as the server's user and must reach its directory through the data directory.
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  if (who) chownSync(pgdata, who.uid, who.gid);
  const early: EarlyWal = {
    warming: warmRestore(pgdata, walRef, first, segmentSize, who).then(
      (problem) => {
        if (problem === undefined) early.warmedAt = Date.now();
        return problem;
      },
      (err: unknown) => (err as Error).message,
    ),
    stop: async () => {
      await early.warming;
      await stopWalDaemon(rt);
    },
  };
  return early;
}

/** `objects` without the tar entries that would land in the WAL daemon's directory, when it is inside `pgdata`. */
export function keepOutRuntimeDir(pgdata: string, objects: BackupObject[]): BackupObject[] {
  const rt = walRuntime(pgdata);
  const inside = relative(rt.pgdata, rt.dir);
  if (!inside || inside.startsWith('..')) return objects;
  const own = (path: string) => path === inside || path.startsWith(`${inside}/`);
  return objects.map((o) => (o.base === 'data' ? { ...o, accept: (p: string) => !own(p) && (o.accept?.(p) ?? true) } : o));
}
