/**
 * Entry point of the detached WAL daemon that `pgark wal-archive` / `pgark wal-restore` start:
 *   node daemon-main.js <pgdata> [<instance>]   (instance: a barman-cloud drop-in's store key)
 * Exits 0 after the idle timeout (PGARK_WAL_DAEMON_IDLE_SECONDS) or on SIGTERM/SIGINT,
 * and at once when another daemon already serves the data directory.
 */
import { DaemonAlreadyRunning, startWalDaemon } from './daemon.js';
import { logger } from '../util/log.js';
import { checkEnvironment, setting } from '../util/options.js';

async function run(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const pgdata = process.argv[2];
  if (!pgdata) throw new Error('usage: daemon-main.js <pgdata>');
  checkEnvironment();
  const idleTimeoutMs = setting('walDaemonIdleSeconds') * 1000;
  // Taken before startup: a signal that arrives while the daemon starts still closes it cleanly
  // (socket, key and PID file removed) instead of killing it half-started.
  let close: (() => Promise<void>) | undefined;
  let stopRequested = false;
  const stop = () => void close?.().finally(() => process.exit(0));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      stopRequested = true;
      stop();
    });
  }
  const daemon = await startWalDaemon({ pgdata, instance: process.argv[3], idleTimeoutMs, onIdle: () => process.exit(0) });
  close = daemon.close;
  if (stopRequested) stop();
}

run().catch((err) => {
  if (err instanceof DaemonAlreadyRunning) process.exit(0);
  logger().error({ err: (err as Error).message }, 'WAL daemon failed to start');
  process.exit(1);
});
