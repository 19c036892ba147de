/**
 * Delta restore (`pgark restore --delta`): the backup is restored over an existing, stopped data
 * directory of the same system, writing only what differs. Each tar member is compared with the
 * file already there while it streams: equal bytes are read and discarded, and from the first
 * difference on the rest is written in place, then the file is cut to the member's size. Files
 * the backup does not hold are removed afterwards (pg_wal's contents, postmaster.opts, logs, ...,
 * as pgBackRest's --delta does), so the directory ends up exactly as a full restore leaves it and
 * gets the same backup_manifest verification.
 *
 * Why a byte comparison rather than backup_manifest's CRC-32C: backup_manifest is the last member
 * of data.tar (it is only known after everything else streamed), and barman-cloud's backups have
 * none. The comparison needs neither. This is how tars without a member index are restored
 * (barman-cloud's, older pgark's, codecs without restart points); tars with one are read by ranges
 * and transfer only what differs (delta-ranged.ts).
 */
import { existsSync, readFileSync, readdirSync, rmSync, lstatSync, rmdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { readControlFile } from '../pg/control-file.js';
import { UserError } from '../util/errors.js';

export interface DeltaStats {
  /** Files left as they were. */
  kept: number;
  /** Files written (new, or changed from some offset). */
  rewritten: number;
  /** Bytes written to disk. */
  bytesWritten: number;
  /** Bytes found equal and not written. */
  bytesSkipped: number;
  /** Files and directories not in the backup, removed. */
  removed: number;
  /** Tars read by ranges (delta-ranged.ts), the ranged GETs that took, and the bytes of their member indexes. */
  rangedObjects: number;
  rangedReads: number;
  indexBytes: number;
  /** Why each other tar was streamed whole. */
  streamed: string[];
}

export function emptyDeltaStats(): DeltaStats {
  return { kept: 0, rewritten: 0, bytesWritten: 0, bytesSkipped: 0, removed: 0, rangedObjects: 0, rangedReads: 0, indexBytes: 0, streamed: [] };
}

/** How the tars were read: by ranges (only what differs crossed the network) or whole, and why. */
export function deltaTransferText(d: DeltaStats): string {
  const ranged = d.rangedObjects
    ? `${d.rangedObjects} tar(s) read by ranges (${d.rangedReads} ranged GETs, member index ${d.rangedObjects > 1 ? 'objects' : 'object'} ${d.indexBytes} bytes; whole-object SHA-256 not computed, files checked against backup_manifest)`
    : '';
  const streamed = d.streamed.length ? `streamed whole, as without --delta: ${d.streamed.join('; ')}` : '';
  return [ranged, streamed].filter(Boolean).join('; ');
}

function pidIsLive(pgdata: string): number | undefined {
  const file = join(pgdata, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: the process exists but belongs to another user (the postgres server as seen by root is fine, but be safe).
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Refuses a directory a delta must not touch: absent or not a data directory, another system's,
 * a running server's, or a backup with tablespaces (their locations are not compared).
 */
export async function checkDeltaTarget(pgdata: string, backup: { backupId: string; systemId?: string; tablespaces: unknown[] }): Promise<void> {
  const hint = 'restore without --delta into an empty or absent directory';
  if (!existsSync(join(pgdata, 'PG_VERSION')) || !existsSync(join(pgdata, 'global', 'pg_control'))) {
    throw new UserError(`--delta: ${pgdata} is not a PostgreSQL data directory (no PG_VERSION or global/pg_control)`, hint);
  }
  const pid = pidIsLive(pgdata);
  if (pid !== undefined) throw new UserError(`--delta: a server (pid ${pid}) is running on ${pgdata}`, 'stop it first (pg_ctl stop); a delta restore rewrites its files');
  const control = await readControlFile(pgdata);
  if (!backup.systemId) throw new UserError(`--delta: backup ${backup.backupId} records no system identifier to compare with ${pgdata}`, hint);
  if (String(control.systemIdentifier) !== backup.systemId) {
    throw new UserError(`--delta: ${pgdata} belongs to system ${control.systemIdentifier}, backup ${backup.backupId} to system ${backup.systemId}`, hint);
  }
  if (backup.tablespaces.length > 0) throw new UserError(`--delta: backup ${backup.backupId} has tablespaces, which a delta restore does not compare`, hint);
}

/**
 * A sink for one tar member at `dest`: compares the incoming bytes with the existing file and
 * writes from the first difference on (everything when there is no file).
 */
export function deltaSink(dest: string, mode: number, stats: DeltaStats): Writable {
  let handle: FileHandle;
  let position = 0;
  let existingSize = 0;
  let diverged = false;
  return new Writable({
    construct(cb) {
      const existing = existsSync(dest) ? lstatSync(dest) : undefined;
      existingSize = existing?.isFile() ? existing.size : 0;
      if (existing && !existing.isFile()) rmSync(dest, { recursive: true, force: true });
      diverged = !existing?.isFile();
      open(dest, existing?.isFile() ? 'r+' : 'w', mode).then((h) => {
        handle = h;
        cb();
      }, cb);
    },
    write(chunk: Buffer, _enc, cb) {
      void (async () => {
        if (!diverged && position + chunk.length <= existingSize) {
          const have = Buffer.allocUnsafe(chunk.length);
          const { bytesRead } = await handle.read(have, 0, chunk.length, position);
          if (bytesRead === chunk.length && have.equals(chunk)) {
            position += chunk.length;
            stats.bytesSkipped += chunk.length;
            return;
          }
        }
        diverged = true;
        await handle.write(chunk, 0, chunk.length, position);
        position += chunk.length;
        stats.bytesWritten += chunk.length;
      })().then(() => cb(), cb);
    },
    final(cb) {
      void (async () => {
        if (position !== existingSize) {
          await handle.truncate(position);
          diverged = true;
        }
        if (diverged) {
          await handle.sync();
          stats.rewritten++;
        } else stats.kept++;
        await handle.close();
      })().then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (handle) handle.close().then(() => cb(err), () => cb(err));
      else cb(err);
    },
  });
}

/**
 * Removes what the backup does not hold: files (and links) not among `files`, then directories
 * that are neither in `directories` nor hold anything kept. Paths of `files` are relative to
 * `root`; `directories` are absolute.
 */
export function removeExtras(root: string, files: Set<string>, directories: Set<string>, stats: DeltaStats): void {
  const walk = (dir: string): boolean => {
    let keep = directories.has(dir);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        if (walk(path)) keep = true;
      } else if (files.has(relative(root, path))) {
        keep = true;
      } else {
        rmSync(path, { force: true });
        stats.removed++;
      }
    }
    if (!keep && dir !== root) {
      rmdirSync(dir);
      stats.removed++;
    }
    return keep;
  };
  walk(root);
}
