/**
 * A drill's scratch area, shared with nothing: one new directory (under --scratch or TMPDIR)
 * holding the data directory, the server's own Unix-socket directory, a pg_hba.conf that admits
 * only local socket connections, and the generated drill manifest. cleanup() stops the server and
 * the WAL daemon its restore_command started, then removes all of it; it may run more than once (on
 * abort and again when the drill unwinds). Kept, the directory stays with both stopped.
 */
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findPgBinaries } from '../pg/binaries.js';
import { mkdirForServer, pgCtlStop, type RunAs } from '../pg/local-server.js';
import { stopWalDaemon, walRuntime } from '../wal/runtime.js';

export class Scratch {
  readonly pgdata: string;
  readonly socketDir: string;
  readonly hbaFile: string;
  readonly manifestFile: string;
  private cleaning?: Promise<void>;

  private constructor(
    readonly dir: string,
    private readonly who: RunAs | undefined,
  ) {
    this.pgdata = join(dir, 'data');
    this.socketDir = join(dir, 'socket');
    this.hbaFile = join(dir, 'pg_hba.conf');
    this.manifestFile = join(dir, 'drill-cluster.yaml');
  }

  static create(base: string | undefined, who: RunAs | undefined): Scratch {
    const dir = mkdtempSync(join(resolve(base ?? tmpdir()), 'pgark-drill-'));
    const s = new Scratch(dir, who);
    mkdirForServer(dir, who);
    mkdirForServer(s.socketDir, who);
    // Trust is safe here: the socket directory is private to the server's OS user.
    s.writeForServer(s.hbaFile, '# pgark drill: local socket connections only\nlocal all all trust\n');
    return s;
  }

  /** A file the server (or the commands it runs) reads; holds no secret values. */
  writeForServer(path: string, text: string): void {
    writeFileSync(path, text, { mode: 0o600 });
    if (this.who) chownSync(path, this.who.uid, this.who.gid);
  }

  /**
   * Stops the server if it runs, then removes the directory. `keep` stops it cleanly instead and
   * leaves the directory: a copy left running would hold its port and memory unseen, and a clean
   * shutdown lets `pg_ctl start` open it again without crash recovery.
   */
  cleanup(keep = false): Promise<void> {
    if (keep) return this.stopProcesses('fast');
    return (this.cleaning ??= (async () => {
      await this.stopProcesses('immediate');
      // The daemon has exited by now, but a restore_command the server started just before its
      // immediate stop may still be moving a segment into pg_wal while the tree is removed.
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    })().finally(() => (this.cleaning = undefined)));
  }

  /**
   * The server first (it runs restore_command), then the WAL daemon that command started, which
   * would otherwise go on prefetching into the data directory until its idle timeout.
   */
  private async stopProcesses(mode: 'fast' | 'immediate'): Promise<void> {
    await this.stopServer(mode);
    await stopWalDaemon(walRuntime(this.pgdata));
  }

  private async stopServer(mode: 'fast' | 'immediate'): Promise<void> {
    if (!existsSync(join(this.pgdata, 'postmaster.pid'))) return;
    const major = Number.parseInt(readFileSync(join(this.pgdata, 'PG_VERSION'), 'utf8'), 10);
    // immediate when the copy is thrown away: a shutdown checkpoint would only cost time.
    await pgCtlStop(findPgBinaries(major), this.pgdata, this.who, mode).catch(() => undefined);
  }
}

/** A TCP port nothing listens on now: it only names the socket file, as the server listens on no address. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}
