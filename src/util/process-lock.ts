/**
 * A lock held for the life of a process: a Linux abstract-namespace Unix socket. Only one socket
 * can be bound to a name, and the kernel unbinds it when its process dies, however it dies. So
 * there is no stale lock to judge, no race between two processes that both find one, and a
 * reused PID means nothing. (A lock file, even with O_EXCL, needs a staleness rule; Node has no
 * flock.) The name is derived from a directory's device and inode, so a path spelled two ways is
 * one lock and a copy of the directory is another.
 *
 * Abstract names are per network namespace: processes that share the directory must share it
 * (containers of one pod do).
 */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

export interface ProcessLock {
  /** Releases the lock; only the process that took it holds this object, so release is always the owner's. */
  release(): Promise<void>;
}

/** The lock name of `purpose` for the directory at dir (which must exist), per OS user. */
export function directoryLockName(purpose: string, dir: string): string {
  const s = statSync(dir, { bigint: true });
  return `pgark-${purpose}-${process.getuid?.() ?? 0}-${s.dev}-${s.ino}`;
}

/** Takes the lock `name`; undefined when another live process holds it. Never waits. */
export function takeProcessLock(name: string): Promise<ProcessLock | undefined> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((sock) => sock.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen(`\0${name}`, () => {
      // The lock must not keep a process alive that has nothing else to do.
      server.unref();
      resolve({ release: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

/**
 * Writes this process's PID to path for humans and for bin/pgark (which reads the WAL daemon's PID
 * from it). Only the holder of the matching process lock calls this, so it may replace whatever a
 * dead process left there.
 */
export function writePidFile(path: string): void {
  const temp = `${path}.${process.pid}`;
  writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

/** Removes the PID file only when it names this process: a successor may already have written its own. */
export function removePidFile(path: string): void {
  let owner: string;
  try {
    owner = readFileSync(path, 'utf8').trim();
  } catch {
    return;
  }
  if (owner === String(process.pid)) rmSync(path, { force: true });
}

/** The PID a PID file names, for messages only (it may be stale; the process lock is the truth). */
export function pidFileOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
