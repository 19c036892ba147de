/**
 * The resident WAL service of one data directory: a Unix socket server hosting the archive and
 * restore services, so archive_command / restore_command calls reuse one process, its loaded SDKs
 * and its open connections. `pgark wal-archive` starts it on demand (daemon-main.ts) and it exits
 * after an idle period; the pgark agent can host the same service with startWalDaemon().
 *
 * One daemon per data directory, guarded by a pid lock file. Requests carry their ConfigRef,
 * so the daemon needs no configuration of its own.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PgarkError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { CompressionPool } from '../codec/pool.js';
import { ArchiveService } from './archive-service.js';
import { encodeMessage, errorReply, type WalReply, type WalRequest } from './protocol.js';
import { RestoreService } from './restore-service.js';
import { ensureRuntimeDirs, walRuntime, type WalRuntime } from './runtime.js';
import { WalTargetCache } from './target.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

export interface WalDaemonOptions {
  pgdata: string;
  /** Exit after this long without requests or transfers; 0 = never (when embedded in the agent). */
  idleTimeoutMs?: number;
  /** Called once the daemon closed itself for idleness. */
  onIdle?: () => void;
}

export interface WalDaemon {
  runtime: WalRuntime;
  archive: ArchiveService;
  restore: RestoreService;
  close(): Promise<void>;
}

export class DaemonAlreadyRunning extends PgarkError {}

/** Whether a daemon answers on the socket (a socket file copied with PGDATA, or left by kill -9, does not). */
function socketAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(socketPath);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** A lock this young belongs to a daemon still starting up. */
const STARTING_LOCK_MS = 5_000;

/**
 * Takes the lock file of the runtime directory. A lock whose daemon no longer answers on the
 * socket (killed, or copied into another data directory by a base backup) is taken over, unless
 * it is so recent that its daemon may still be starting.
 */
async function acquireLock(rt: WalRuntime): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(rt.lockFile, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = Date.now() - (statSync(rt.lockFile, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if ((await socketAlive(rt.socketPath)) || age < STARTING_LOCK_MS) {
      throw new DaemonAlreadyRunning(`a pgark WAL daemon already serves ${rt.pgdata}`);
    }
    rmSync(rt.lockFile, { force: true });
  }
  throw new DaemonAlreadyRunning(`could not take the WAL daemon lock ${rt.lockFile}`);
}

export async function startWalDaemon(opts: WalDaemonOptions): Promise<WalDaemon> {
  const rt = walRuntime(opts.pgdata);
  ensureRuntimeDirs(rt);
  await acquireLock(rt);
  // Prefetched files of an earlier run may predate changes to the archive; start clean.
  rmSync(rt.restoreSpool, { recursive: true, force: true });
  mkdirSync(rt.restoreSpool, { recursive: true, mode: 0o700 });
  const targets = new WalTargetCache();
  const compression = new CompressionPool();
  const archive = new ArchiveService(rt, targets, compression);
  const restore = new RestoreService(rt, targets);
  const walDir = join(rt.pgdata, 'pg_wal');
  await archive.sweepMarkers(walDir);
  let lastActivity = Date.now();
  let active = 0;

  async function handle(req: WalRequest): Promise<WalReply> {
    switch (req.op) {
      case 'archive': {
        const r = await archive.archive(req.path, req.config);
        return { ok: true, detail: `${r.status} ${r.key}` };
      }
      case 'restore':
        await restore.restore(req.name, req.dest, req.config);
        return { ok: true };
      case 'restore-served':
        await restore.served(req.name, req.config);
        return { ok: true };
    }
  }

  function onConnection(sock: Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.removeAllListeners('data');
      active++;
      lastActivity = Date.now();
      let req: WalRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as WalRequest;
      } catch {
        sock.end(encodeMessage({ ok: false, message: 'malformed request', exitCode: 2 }));
        active--;
        return;
      }
      handle(req)
        .catch(errorReply)
        .then((reply) => {
          if (!sock.destroyed) sock.end(encodeMessage(reply));
        })
        .finally(() => {
          active--;
          lastActivity = Date.now();
        });
    });
  }

  const server: Server = createServer(onConnection);
  try {
    unlinkSync(rt.socketPath);
  } catch {
    // no stale socket
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(rt.socketPath, () => resolve());
  });
  const socketIno = statSync(rt.socketPath).ino;
  logger().info({ pid: process.pid, socket: rt.socketPath }, 'WAL daemon listening');

  let closed = false;
  const sweep = setInterval(() => void archive.sweepMarkers(walDir), 60_000);
  sweep.unref();
  const idleTimer =
    opts.idleTimeoutMs === 0
      ? undefined
      : setInterval(() => {
          const idle = Date.now() - lastActivity > (opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
          if (idle && active === 0 && !archive.busy && !restore.busy) {
            void close().then(() => opts.onIdle?.());
          } else if (archive.busy || restore.busy) {
            lastActivity = Math.max(lastActivity, Date.now() - 1000);
          }
        }, 1000);

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearInterval(sweep);
    if (idleTimer) clearInterval(idleTimer);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // A daemon started meanwhile (our socket stopped answering) may own these names now.
    if (statSync(rt.socketPath, { throwIfNoEntry: false })?.ino === socketIno) rmSync(rt.socketPath, { force: true });
    const lockOwner = (() => {
      try {
        return readFileSync(rt.lockFile, 'utf8').trim();
      } catch {
        return undefined;
      }
    })();
    if (lockOwner === String(process.pid)) rmSync(rt.lockFile, { force: true });
    rmSync(rt.restoreSpool, { recursive: true, force: true });
    await targets.close();
    await compression.close();
    logger().info({ pid: process.pid }, 'WAL daemon stopped');
  }

  return { runtime: rt, archive, restore, close };
}
