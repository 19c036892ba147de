/**
 * Hosts the WAL fast path (the resident WAL daemon of src/wal/daemon.ts) inside the agent, for
 * the data directory the agent serves: `pgark wal-archive` / `wal-restore`, run by PostgreSQL,
 * find the agent's socket and hand their segments to it instead of starting a daemon of their
 * own. When a standalone daemon already serves the directory, the agent waits for it to exit
 * (it does after its idle timeout) and takes over.
 *
 * Counts for the metrics come from the archive service's outcome of each request: segments stored
 * ahead by look-ahead are counted when PostgreSQL's request for them reaches the daemon.
 */
import { logger } from '../util/log.js';
import type { ArchiveOutcome } from '../wal/archive-service.js';
import { DaemonAlreadyRunning, startWalDaemon, type WalDaemon } from '../wal/daemon.js';
import type { AgentMetrics } from './metrics.js';

const TAKE_OVER_RETRY_MS = 5000;
const FLUSH_TIMEOUT_MS = 60_000;

export class WalHost {
  private daemon?: WalDaemon;
  private retry?: NodeJS.Timeout;
  private stopped = false;
  private lastFailure?: { at: number; message: string };
  private lastSuccessAt = 0;

  constructor(
    readonly pgdata: string,
    private readonly metrics: AgentMetrics,
  ) {}

  get serving(): boolean {
    return this.daemon !== undefined;
  }

  /** The last archive request failed (and none succeeded since): its error, for walArchivingFailing. */
  problem(): string | undefined {
    if (!this.lastFailure || this.lastFailure.at < this.lastSuccessAt) return undefined;
    return `WAL archiving is failing: ${this.lastFailure.message}`;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    try {
      this.daemon = await startWalDaemon({ pgdata: this.pgdata, idleTimeoutMs: 0, onArchiveResult: (o) => this.count(o) });
      logger().info({ pgdata: this.pgdata, socket: this.daemon.runtime.socketPath }, 'agent serves the WAL archive fast path');
    } catch (err) {
      if (!(err instanceof DaemonAlreadyRunning)) throw err;
      logger().info({ pgdata: this.pgdata, reason: err.message }, 'a standalone WAL daemon serves this data directory; the agent takes over when it exits');
      this.retry = setTimeout(() => void this.start().catch((e: Error) => logger().error({ err: e.message }, 'WAL fast path not started')), TAKE_OVER_RETRY_MS);
    }
  }

  private count({ result, error }: ArchiveOutcome): void {
    if (error) {
      this.metrics.walArchiveFailed.inc();
      this.lastFailure = { at: Date.now(), message: error.message };
      return;
    }
    this.metrics.walArchived.inc();
    if (result.status === 'stored') this.metrics.uploadedBytes.inc({ kind: 'wal' }, result.size);
    this.lastSuccessAt = Date.now();
  }

  /** Lets uploads in progress finish (bounded), then closes the socket. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const daemon = this.daemon;
    if (!daemon) return;
    const deadline = Date.now() + FLUSH_TIMEOUT_MS;
    while (daemon.archive.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (daemon.archive.busy) logger().warn({ pgdata: this.pgdata }, 'WAL uploads still running at shutdown; PostgreSQL will retry them');
    await daemon.close();
    this.daemon = undefined;
  }
}
