/**
 * Where the WAL client and the resident WAL daemon of one data directory meet: a runtime directory
 * (default $PGDATA/pgark-wal, or PGARK_WAL_RUNTIME_DIR) holding the daemon's socket, key, PID file
 * and log, the archive spool (markers of segments already stored) and the restore spool
 * (prefetched segments). Everything in it can be deleted at any time; it only saves work.
 *
 * A marker there makes archive_command succeed and the socket's answer decides whether PostgreSQL
 * may recycle a segment, so the directory is trusted only while it is private: owned by this OS
 * user, no group or other permissions, not a symbolic link. A socket path too long for sun_path
 * goes to a private directory under the temp directory, checked the same way.
 *
 * This module is loaded on the archive_command hot path, so it uses node builtins only.
 */
import { createHash } from 'node:crypto';
import { chownSync, copyFileSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { ConfigRef } from './protocol.js';
import { RUNTIME_DIR_NAME } from '../util/cnpg.js';
import { setting } from '../util/options.js';

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 100;

export interface WalRuntime {
  pgdata: string;
  /** A daemon of its own under the runtime directory (a barman-cloud drop-in's store key); undefined = pgark's. */
  instance?: string;
  dir: string;
  /** The directory holding the socket: dir, or a private one under the temp directory when dir is too long. */
  socketDir: string;
  socketPath: string;
  /** The daemon's secret, which client and daemon prove to each other that they know. */
  keyFile: string;
  /** The daemon's PID, for humans and bin/pgark; the process lock, not this file, decides who runs. */
  lockFile: string;
  logFile: string;
  /** Markers of segments the daemon stored ahead of PostgreSQL's request. */
  archiveSpool: string;
  /** Segments prefetched for restore_command. */
  restoreSpool: string;
  /** Names the live daemon that filled the restore spool (processIdentity); bin/pgark serves the spool only while it matches. */
  restoreSpoolOwner: string;
}

export function walRuntime(pgdata: string, instance?: string): WalRuntime {
  const data = resolve(pgdata);
  const base = resolve(setting('walRuntimeDir') ?? join(data, RUNTIME_DIR_NAME));
  const dir = instance ? join(base, instance) : base;
  let socketDir = dir;
  let socketPath = join(dir, 'daemon.sock');
  if (socketPath.length > MAX_SOCKET_PATH) {
    socketDir = join(tmpdir(), `pgark-wal-${process.getuid?.() ?? 0}`);
    socketPath = join(socketDir, `${createHash('sha256').update(dir).digest('hex').slice(0, 20)}.sock`);
  }
  return {
    pgdata: data,
    instance,
    dir,
    socketDir,
    socketPath,
    keyFile: join(dir, 'daemon.key'),
    lockFile: join(dir, 'daemon.lock'),
    logFile: join(dir, 'daemon.log'),
    archiveSpool: join(dir, 'archive-spool'),
    restoreSpool: join(dir, 'restore-spool'),
    restoreSpoolOwner: join(dir, 'restore-spool', '.owner'),
  };
}

/** A runtime or socket directory that another user could write to or answer from. */
class RuntimeDirError extends Error {}

/** Throws RuntimeDirError unless dir is a real directory owned by this user with mode 0700 (or stricter); returns what lstat said of it. */
function checkPrivateDir(dir: string): Stats {
  const s = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  const mode = (s.mode & 0o777).toString(8).padStart(4, '0');
  const fix = `remove it (it holds nothing that cannot be rebuilt) or make it private: chown ${uid} and chmod 0700`;
  if (!s.isDirectory()) throw new RuntimeDirError(`${dir} is not a directory (a symbolic link or a file); pgark does not use it: ${fix}`);
  if (s.uid !== uid || (s.mode & 0o077) !== 0) {
    throw new RuntimeDirError(`${dir} is owned by uid ${s.uid} with mode ${mode}; pgark uses it only when it is private to uid ${uid} (this process's user, mode 0700): ${fix}`);
  }
  return s;
}

/** Why the existing runtime directories must not be trusted, or undefined when they are private (or not there yet). */
export function runtimeDirProblem(rt: WalRuntime): string | undefined {
  for (const d of new Set([rt.dir, rt.socketDir])) {
    try {
      checkPrivateDir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return (err as Error).message;
    }
  }
  return undefined;
}

/** Creates the runtime directories private to this OS user; throws RuntimeDirError when an existing one is not. */
export function ensureRuntimeDirs(rt: WalRuntime): void {
  if (rt.instance) mkdirSync(dirname(rt.dir), { recursive: true, mode: 0o700 });
  for (const d of new Set([rt.dir, rt.socketDir])) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    checkPrivateDir(d);
  }
  for (const d of [rt.archiveSpool, rt.restoreSpool]) mkdirSync(d, { recursive: true, mode: 0o700 });
}

/**
 * The identity of the file at path as one line: "inode size mtime", the mtime in seconds with
 * nanoseconds, exactly as GNU `stat -c '%i %s %.9Y'` prints it, so that bin/pgark (POSIX sh) can
 * check a marker without starting Node. Undefined when the file is missing.
 */
export function fileIdentity(path: string): string | undefined {
  const s = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (!s) return undefined;
  const ns = s.mtimeNs;
  return `${s.ino} ${s.size} ${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** Suffix of the file that exists in the archive spool while the daemon uploads a segment (bin/pgark waits on it). */
export const INFLIGHT_SUFFIX = '.inflight';
/** An archive request bin/pgark left for the daemon (archive-requests.ts). */
export const REQUEST_SUFFIX = '.request';
/** In the archive spool of a daemon that takes those requests, once its watch is up. */
export const REQUESTS_TAKEN_FILE = '.requests';

/**
 * Whether the archive-spool marker at markerPath was written for the very file now at walPath
 * (same inode, size and mtime). Unreadable or foreign markers never count. Synchronous: it is
 * the whole work of an archive_command call for a segment the daemon already stored.
 */
export function archiveMarkerMatches(markerPath: string, walPath: string): boolean {
  try {
    const identity = fileIdentity(walPath);
    return identity !== undefined && readFileSync(markerPath, 'utf8').trim() === identity;
  } catch {
    return false;
  }
}

/** Restore spool of one source (manifests + cluster + --source): files prefetched from one archive never serve another. */
export function restoreSpoolDir(rt: WalRuntime, ref: ConfigRef): string {
  const id = createHash('sha256')
    .update(JSON.stringify([ref.files.map((f) => resolve(f)), ref.cluster ?? '', ref.source ?? '', ref.barman?.store ?? '']))
    .digest('hex')
    .slice(0, 16);
  return join(rt.restoreSpool, id);
}

/**
 * Moves a prefetched file to where PostgreSQL wants it: a rename, or when pg_wal is on another
 * file system, a copy to a temp name beside the target and a rename, so the target name only
 * ever holds a complete file. Returns false when the spool does not hold the file (or cannot be used).
 */
export function takeSpooledFile(spooled: string, dest: string): boolean {
  try {
    renameSync(spooled, dest);
    return true;
  } catch (err) {
    // Not spooled, or no usable spool: the caller fetches the file the normal way.
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') return false;
  }
  const temp = join(dirname(dest), `.${basename(dest)}.pgark-tmp-${process.pid}`);
  try {
    copyFileSync(spooled, temp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  renameSync(temp, dest);
  unlinkSync(spooled);
  return true;
}

/**
 * One process for as long as the machine runs, as bin/pgark reads it without a fork: "PID BOOT_ID
 * START", START being field 22 of /proc/PID/stat (clock ticks since boot). A PID alone may name
 * another process after the daemon died, and after a reboot even the postmaster. Undefined where
 * /proc says nothing (bin/pgark then never serves the spool).
 */
export function processIdentity(pid: number): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
    return boot && start ? `${pid} ${boot} ${start}` : undefined;
  } catch {
    return undefined;
  }
}

/** How long a stopped daemon may take to close its socket and spool before it is killed. */
const STOP_GRACE_MS = 5_000;

/** The PID in daemon.lock, when it names the daemon of this data directory (after a kill -9 it may name anyone). */
function daemonPid(rt: WalRuntime): number | undefined {
  try {
    const pid = Number(readFileSync(rt.lockFile, 'utf8').trim());
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('daemon-main.js')) && argv.includes(rt.pgdata) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops the daemon of `rt`, if one runs (SIGTERM, SIGKILL after STOP_GRACE_MS), and waits for its
 * exit: for a caller about to remove the directory the daemon writes into.
 */
export async function stopWalDaemon(rt: WalRuntime): Promise<void> {
  const pid = daemonPid(rt);
  if (pid === undefined) return;
  const gone = () => daemonPid(rt) !== pid;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // it exited meanwhile
    }
  };
  /** True once the daemon has exited, false while it still runs `ms` later. */
  const exitedWithin = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (!gone()) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  };
  signal('SIGTERM');
  if (await exitedWithin(STOP_GRACE_MS)) return;
  signal('SIGKILL');
  await exitedWithin(STOP_GRACE_MS);
}

/**
 * The content of an absence marker (<spool>/<name>.absent) that answers for `ms`: the moment it
 * expires, in hundredths of a second since boot, as bin/pgark reads /proc/uptime without a fork.
 * The daemon also removes the marker by timer, but a daemon stalled past that moment must not
 * keep answering "not found" for a file the archive may have received since.
 */
export function absenceMarkerText(ms: number): string {
  const [uptime] = readFileSync('/proc/uptime', 'utf8').split(' ');
  return `${Math.round(Number(uptime) * 100 + ms / 10)}\n`;
}

/**
 * Marks the (freshly emptied) restore spool as this process's. Prefetched segments are not
 * fsynced (restore-service.ts): they may be served only by the daemon that wrote them, in this
 * boot, and this file is how bin/pgark and the Node client tell.
 */
export function claimRestoreSpool(rt: WalRuntime): void {
  claimOwnerFile(rt.restoreSpoolOwner);
}

/**
 * Writes this process's identity (processIdentity) to `ownerFile` atomically, owned by `owner` when
 * given (a root process claiming a directory the server's user reads); false when /proc cannot say
 * who we are. bin/pgark's spool_owner_alive reads such files.
 */
export function claimOwnerFile(ownerFile: string, owner?: { uid: number; gid: number }): boolean {
  const identity = processIdentity(process.pid);
  if (!identity) return false;
  writeLine(ownerFile, identity, owner);
  return true;
}

/** Writes `line` to `path` whole or not at all (bin/pgark reads such files at any moment). */
function writeLine(path: string, line: string, owner?: { uid: number; gid: number }): void {
  const temp = `${path}.${process.pid}`;
  writeFileSync(temp, `${line}\n`, { mode: 0o600 });
  if (owner) chownSync(temp, owner.uid, owner.gid);
  renameSync(temp, path);
}

/**
 * In the restore spool: the pg_wal directory, spelt as bin/pgark spells it (`$PWD/pg_wal` in the
 * data directory PostgreSQL runs restore_command in), that the daemon owning the spool found on the
 * spool's file system, with the runtime directory and the spool private to it. bin/pgark then
 * renames a prefetched segment into pg_wal without a `stat` of its own: that was a fork and an
 * exec, about 6 of the 18-19.5 ms each restore_command took on a 2-core machine, where PostgreSQL
 * replays a segment in about 60 (docs/measurements/recovery-time.md, "restore_command without a
 * stat").
 */
export const RENAME_TARGET_FILE = '.rename-target';

/**
 * Writes RENAME_TARGET_FILE once pg_wal exists: the daemon starts during the data step, before the
 * backup's pg_wal is there. True once decided (written, or pg_wal is on another file system, where
 * bin/pgark's own check sends the segment to Node, which copies it); false to try again later.
 */
export function noteRenameTarget(rt: WalRuntime): boolean {
  let walDevice: number;
  try {
    walDevice = statSync(join(rt.pgdata, 'pg_wal')).dev;
  } catch {
    return false;
  }
  try {
    checkPrivateDir(rt.dir);
    // A real directory (not a link), so lstat's device is the spool's.
    if (checkPrivateDir(rt.restoreSpool).dev !== walDevice) return true;
    writeLine(join(rt.restoreSpool, RENAME_TARGET_FILE), join(realpathSync(rt.pgdata), 'pg_wal'));
    return true;
  } catch {
    return false;
  }
}

/** Whether the restore spool was filled by a daemon that still runs (claimRestoreSpool). */
export function restoreSpoolLive(rt: WalRuntime): boolean {
  try {
    const owner = readFileSync(rt.restoreSpoolOwner, 'utf8').trim();
    const identity = processIdentity(Number(owner.split(' ')[0]));
    return identity !== undefined && identity === owner;
  } catch {
    return false;
  }
}
