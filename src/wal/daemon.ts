/**
 * The resident WAL service of one data directory: a Unix socket server hosting the archive and
 * restore services, so archive_command / restore_command calls reuse one process, its loaded SDKs
 * and its open connections. `pgark wal-archive` starts it on demand (daemon-main.ts) and it exits
 * after an idle period; the pgark agent can host the same service with startWalDaemon().
 *
 * One daemon per data directory, guarded by a process lock (util/process-lock.ts); only
 * clients that know the daemon's key are served (protocol.ts). Requests carry their ConfigRef,
 * so the daemon needs no configuration of its own.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PgarkError } from '../util/errors.js';
import { startBufferCollector } from '../util/gc.js';
import { logger } from '../util/log.js';
import { OPTIONS } from '../util/options.js';
import { CompressionPool } from '../codec/pool.js';
import { takeArchiveRequests } from './archive-requests.js';
import { ArchiveService, type ArchiveServiceOptions } from './archive-service.js';
import { directoryLockName, pidFileOwner, removePidFile, takeProcessLock, writePidFile, type ProcessLock } from '../util/process-lock.js';
import { encodeMessage, errorReply, newNonce, proofMatches, prove, type Sealed, type WalReply, type WalRequest } from './protocol.js';
import { RestoreService } from './restore-service.js';
import { claimRestoreSpool, ensureRuntimeDirs, walRuntime, type WalRuntime } from './runtime.js';
import { WalTargetCache } from './target.js';

/** Without idleTimeoutMs: PGARK_WAL_DAEMON_IDLE_SECONDS's default. */
export const DEFAULT_IDLE_TIMEOUT_MS = Number(OPTIONS.walDaemonIdleSeconds.default) * 1000;

export interface WalDaemonOptions {
  pgdata: string;
  /** WalRuntime.instance: the store key of a barman-cloud drop-in's daemon. */
  instance?: string;
  /** Exit after this long without requests or transfers; 0 = never (when embedded in the agent). */
  idleTimeoutMs?: number;
  /** Called once the daemon closed itself for idleness. */
  onIdle?: () => void;
  /** Told how each archive request ended (ArchiveServiceOptions.onResult). */
  onArchiveResult?: ArchiveServiceOptions['onResult'];
}

export interface WalDaemon {
  runtime: WalRuntime;
  archive: ArchiveService;
  restore: RestoreService;
  close(): Promise<void>;
}

export class DaemonAlreadyRunning extends PgarkError {}

/**
 * Takes the data directory's process lock, so that of any number of daemons (and agents) started
 * together exactly one serves it, and one killed with -9 is replaced at once.
 */
async function acquireLock(rt: WalRuntime): Promise<ProcessLock> {
  // A drop-in's daemon is one per store key: its lock is on its own directory.
  const lock = await takeProcessLock(directoryLockName('wal', rt.instance ? rt.dir : rt.pgdata));
  if (!lock) {
    const pid = pidFileOwner(rt.lockFile);
    throw new DaemonAlreadyRunning(`a pgark WAL daemon${pid ? ` (pid ${pid})` : ''} already serves ${rt.pgdata}`);
  }
  writePidFile(rt.lockFile);
  return lock;
}

/** A fresh secret per daemon: a key read by an earlier daemon's clients proves nothing to this one. */
function writeKey(rt: WalRuntime): string {
  const key = randomBytes(32).toString('hex');
  const temp = `${rt.keyFile}.${process.pid}`;
  rmSync(temp, { force: true });
  writeFileSync(temp, key, { mode: 0o600, flag: 'wx' });
  renameSync(temp, rt.keyFile);
  return key;
}

/**
 * The daemon's collector runs at every 4 MiB of Buffer growth, not the sidecar's 8: with 8 MiB, 8
 * pushes at once left 30 MiB of dead Buffers at the peak (bench/wal-archive.ts with the sampler).
 */
const DAEMON_REGROWTH = 4 * 1024 * 1024;

/** A request line is a few hundred bytes; anything far longer is not a client of ours. */
const MAX_REQUEST_BYTES = 1024 * 1024;

export async function startWalDaemon(opts: WalDaemonOptions): Promise<WalDaemon> {
  const rt = walRuntime(opts.pgdata, opts.instance);
  ensureRuntimeDirs(rt);
  const lock = await acquireLock(rt);
  try {
    return await serve(rt, lock, opts);
  } catch (err) {
    removePidFile(rt.lockFile);
    await lock.release();
    throw err;
  }
}

async function serve(rt: WalRuntime, lock: ProcessLock, opts: WalDaemonOptions): Promise<WalDaemon> {
  const key = writeKey(rt);
  // Prefetched files of an earlier run may predate changes to the archive; start clean.
  rmSync(rt.restoreSpool, { recursive: true, force: true });
  mkdirSync(rt.restoreSpool, { recursive: true, mode: 0o700 });
  claimRestoreSpool(rt);
  const targets = new WalTargetCache();
  // One worker: each costs tens of MiB (its own heap and garbage), and the store, not compression, sets the pace.
  const compression = new CompressionPool(1);
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  // Pushes drop 256 KiB chunks at up to maxParallel x the store's rate; left to V8, 64 MiB of them
  // pile up before it collects, as much as the whole daemon's bar (96 MiB, docs/wal-archiving.md).
  // Checked only while the services transfer something: idle, the daemon wakes once a second.
  const collector = startBufferCollector(0, DAEMON_REGROWTH, 'tracked');
  const archive = new ArchiveService(rt, targets, { compression, onResult: opts.onArchiveResult, failureRetryWindowMs: idleMs === 0 ? undefined : 2 * idleMs, trackTransfer: collector.during });
  const restore = new RestoreService(rt, targets, { trackTransfer: collector.during });
  const walDir = join(rt.pgdata, 'pg_wal');
  await archive.sweepMarkers(walDir);
  let lastActivity = Date.now();
  let active = 0;

  /** Runs a request's work counted as activity: the daemon does not go idle under it. */
  async function whileActive<T>(work: () => Promise<T>): Promise<T> {
    active++;
    lastActivity = Date.now();
    try {
      return await work();
    } finally {
      active--;
      lastActivity = Date.now();
    }
  }

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
      case 'restore-warm':
        await restore.warm(req.name, req.config, req.segmentSize);
        return { ok: true };
    }
  }

  function onConnection(sock: Socket): void {
    const challenge = newNonce();
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.write(encodeMessage({ challenge }));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_REQUEST_BYTES) sock.destroy();
        return;
      }
      sock.removeAllListeners('data');
      let sealed: Sealed;
      let req: WalRequest;
      try {
        sealed = JSON.parse(buf.slice(0, nl)) as Sealed;
        if (typeof sealed.nonce !== 'string' || !proofMatches(prove(key, 'client', challenge, sealed.nonce, sealed.body), sealed.proof)) throw new Error('no proof');
        req = JSON.parse(sealed.body) as WalRequest;
      } catch {
        logger().warn({ socket: rt.socketPath }, 'WAL daemon: a connection did not prove it knows the daemon key; closed without serving it');
        sock.destroy();
        return;
      }
      const nonce = sealed.nonce;
      void whileActive(() =>
        handle(req)
          .catch(errorReply)
          .then((reply) => {
            const body = JSON.stringify(reply);
            if (!sock.destroyed) sock.end(encodeMessage({ body, proof: prove(key, 'daemon', challenge, nonce, body) }));
          }),
      );
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
  logger().info({ pid: process.pid, socket: rt.socketPath }, 'WAL daemon listening');
  // pgark's own daemon only: a drop-in's store is named by its caller's environment (archive-requests.ts).
  const requests = rt.instance
    ? undefined
    : await takeArchiveRequests(rt, walDir, (path, config) => whileActive(() => archive.archive(path, config, 'marker')));

  let closed = false;
  const sweep = setInterval(() => void archive.sweepMarkers(walDir), 60_000);
  sweep.unref();
  const idleTimer =
    opts.idleTimeoutMs === 0
      ? undefined
      : setInterval(() => {
          const idle = Date.now() - lastActivity > idleMs;
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
    requests?.close();
    collector.stop();
    if (idleTimer) clearInterval(idleTimer);
    restore.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // The names are ours while we hold the lock: remove them before a successor can take it.
    rmSync(rt.socketPath, { force: true });
    rmSync(rt.keyFile, { force: true });
    removePidFile(rt.lockFile);
    rmSync(rt.restoreSpool, { recursive: true, force: true });
    await lock.release();
    await targets.close();
    await compression.close();
    logger().info({ pid: process.pid }, 'WAL daemon stopped');
  }

  return { runtime: rt, archive, restore, close };
}
