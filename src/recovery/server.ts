/**
 * `--start`: runs PostgreSQL on the restored data directory, follows the recovery in the server
 * log (segments restored from the archive, where replay stopped, the new timeline), waits for the
 * promotion, then makes sure the application database and its owner exist as CNPG does
 * (CREATE ROLE ... LOGIN, CREATE DATABASE ... OWNER; an existing database is left untouched).
 * The server is left running.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { ClientConfig, Client } from 'pg';
import type { PgBinaries } from '../pg/binaries.js';
import { CURRENT_TIMELINE_SQL } from '../pg/connect.js';
import { runPgTool, type RunAs } from '../pg/local-server.js';
import { PgarkError } from '../util/errors.js';
import { ABORT_RECOVERY_MARK } from '../wal/restore-exit.js';
import { replayEndProblem } from './finish.js';
import { every, type Progress } from './progress.js';

export interface RecoveryOutcome {
  segmentsRestored: number;
  /** Log line saying where replay stopped ("recovery stopping before commit of transaction 745, time ..."). */
  stoppedAt?: string;
  newTimeline?: number;
  seconds: number;
}

export interface ConnectionInfo {
  host: string;
  port: number;
}

/** Where the running server listens, from postmaster.pid (socket directory first, then the first listen address). */
export function connectionFromPidFile(pgdata: string): ConnectionInfo | undefined {
  const path = join(pgdata, 'postmaster.pid');
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, 'utf8').split('\n');
  const port = Number(lines[3]);
  const socketDir = lines[4]?.trim();
  const listen = lines[5]?.trim().split(',')[0]?.trim();
  if (!port) return undefined;
  if (socketDir) return { host: socketDir, port };
  if (listen && listen !== '*') return { host: listen, port };
  return { host: '127.0.0.1', port };
}

/** 'starting' until postmaster.pid appears, then 'alive' or 'gone'. */
function postmasterState(pgdata: string): 'starting' | 'alive' | 'gone' {
  const path = join(pgdata, 'postmaster.pid');
  if (!existsSync(path)) return 'starting';
  const pid = Number(readFileSync(path, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch {
    return 'gone';
  }
}

/**
 * How often the server log is read: the promotion is seen this long after it at most, and the
 * restore reports a running server that much later (250 ms was an eighth of a small WAN recovery's
 * replay). A read is a stat and the new bytes.
 */
const LOG_POLL_MS = 50;
/** Every this many log reads, the server is asked too (a connection each time): about once a second. */
const SERVER_POLL_EVERY = 20;

/** How long a starting postmaster may take to write postmaster.pid on a busy machine. */
const STARTUP_GRACE_MS = 30_000;

export async function startServer(bin: PgBinaries, pgdata: string, who: RunAs | undefined, logFile: string): Promise<void> {
  // -W: recovery may take far longer than pg_ctl's wait; progress is followed in the log instead.
  const r = await runPgTool(bin.path('pg_ctl'), ['-D', pgdata, '-l', logFile, '-W', 'start'], { who });
  if (r.code !== 0) throw new PgarkError(`pg_ctl start failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
}

/**
 * Asks a server started in standby mode (settings.ts, RecoveryConfig.standby) to promote once it
 * has replayed what the archive holds. pg_ctl refuses while the control file does not say archive
 * recovery: until the startup process has begun, for a backup of a primary. A backup of a standby
 * says so already, and then pg_ctl can write the promote file before the postmaster deletes leftover
 * ones at its start, or signal it before it has a startup process to pass the request to: such a
 * request is lost, and followRecovery sends it again until PostgreSQL logs that it received it.
 */
export async function requestPromotion(bin: PgBinaries, pgdata: string, who: RunAs | undefined): Promise<{ sent: boolean; why: string }> {
  const r = await runPgTool(bin.path('pg_ctl'), ['-D', pgdata, '-W', 'promote'], { who });
  return { sent: r.code === 0, why: (r.stderr || r.stdout).trim() };
}

/**
 * How long a sent promotion may go unacknowledged before it is sent again, doubling after each
 * resend up to PROMOTE_RESEND_MAX_MS. A request is lost only before the startup process runs
 * (commit a1e1679: a backup of a standby), so the first resend comes soon; after that PostgreSQL
 * logs "received promote request" only once replay has exhausted the archive, which may be hours
 * away, and each resend is a pg_ctl run (about 30 ms of CPU beside replay). Sending twice is
 * harmless.
 */
const PROMOTE_RESEND_MS = 1000;
const PROMOTE_RESEND_MAX_MS = 8000;

const RESTORED = /restored log file "([0-9A-F]{24})" from archive/;
const STOPPING = /(recovery stopping [^\n]*)/;
const NEW_TIMELINE = /selected new timeline ID: (\d+)/;
const READY = /database system is ready to accept connections/;
const PROMOTE_RECEIVED = /received promote request/;
const FATAL = /(FATAL|PANIC):\s+([^\n]*)/;
// What our own connection attempts during startup make the server log; not a failure.
const CONNECTION_REFUSALS = /the database system is (starting up|not yet accepting connections|shutting down)|not yet accepting connections/;
// The stderr line of a pgark command that made PostgreSQL abort the recovery (wal-restore, --finish-recovery).
const ABORT_LINE = new RegExp(`^pgark[^:\\n]*: ${ABORT_RECOVERY_MARK} ([^\\n]*)`, 'gm');
// PostgreSQL pauses instead of failing when, e.g., max_connections is lower than on the primary.
const PAUSED = /recovery has paused/;

/** The bytes appended to `path` since `offset` (none while it does not exist). */
function readFrom(path: string, offset: number): Buffer {
  if (!existsSync(path)) return Buffer.alloc(0);
  const fd = openSync(path, 'r');
  try {
    const fresh = Buffer.alloc(Math.max(0, fstatSync(fd).size - offset));
    const n = readSync(fd, fresh, 0, fresh.length, offset);
    return fresh.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The server log and the offset where this server's output begins. */
export interface FollowedLog {
  path: string;
  from: number;
}

/**
 * Follows the server log until PostgreSQL has promoted (the "ready to accept connections" after
 * "selected new timeline ID"). Fails with pgark's reason for stopping the recovery (a damaged WAL
 * object, replay short of the archive), else the server's own FATAL message, if the postmaster
 * exits; and fails after a promotion whose replay ended before `archiveEnd` (when
 * recovery_end_command could not stop it, e.g. it failed for another reason).
 */
export async function followRecovery(
  pgdata: string,
  log: FollowedLog,
  progress: Progress,
  targetText: string,
  user: string,
  archiveEnd?: string,
  hooks: {
    /** pg_ctl promote, for a server started in standby mode: tried until PostgreSQL logs that it received it. */
    promote?: () => Promise<{ sent: boolean; why: string }>;
    /** recovery_end_command handed over by bin/pgark (finish-handoff.ts), answered at each poll. */
    finish?: { serve(): void };
  } = {},
): Promise<RecoveryOutcome> {
  const { promote, finish } = hooks;
  const logFile = log.path;
  const started = Date.now();
  const outcome: RecoveryOutcome = { segmentsRestored: 0, seconds: 0 };
  let lastSegment = '';
  let offset = log.from;
  // Only this server's lines; a line still being written stays in `partial` until its newline arrives.
  let text = '';
  let partial = '';
  const decoder = new StringDecoder('utf8');
  let promoted = false;
  let reported = 0;
  let replayLsn: string | undefined;
  const ticker = every(2000, () => {
    if (outcome.segmentsRestored !== reported) {
      reported = outcome.segmentsRestored;
      const at = replayLsn ? `replayed up to ${replayLsn} (${lastSegment})` : `at ${lastSegment}`;
      progress.step(`replaying WAL: ${outcome.segmentsRestored} segments fetched from the archive, ${at}; target: ${targetText}`);
    }
  });
  let polls = 0;
  let seenRunning = false;
  let promoteReceived = promote === undefined;
  let promoteSentAt: number | undefined;
  let resendAfter = PROMOTE_RESEND_MS;
  /** Reads what the log gained since the last read, line by line. */
  const readLog = () => {
    const bytes = readFrom(logFile, offset);
    offset += bytes.length;
    const lines = (partial + decoder.write(bytes)).split('\n');
    partial = lines.pop()!;
    text += lines.map((l) => `${l}\n`).join('');
    for (const line of lines) {
      const restored = RESTORED.exec(line);
      if (restored) {
        outcome.segmentsRestored++;
        lastSegment = restored[1];
      }
      const stop = STOPPING.exec(line);
      if (stop) {
        outcome.stoppedAt = stop[1];
        progress.step(`target reached: ${stop[1]}`);
      }
      const tl = NEW_TIMELINE.exec(line);
      if (tl) {
        outcome.newTimeline = Number(tl[1]);
        progress.step(`promoted: new timeline ${tl[1]}`);
      }
      if (READY.test(line) && outcome.newTimeline !== undefined) promoted = true;
      if (PROMOTE_RECEIVED.test(line)) promoteReceived = true;
      if (PAUSED.test(line)) {
        const detail = text.slice(text.indexOf(line)).split('\n').slice(1, 4).join(' ').trim();
        throw new PgarkError(`PostgreSQL paused the recovery: ${line.trim()} ${detail}`, 1, `server log: ${logFile}; fix the setting it names, then restart the server`);
      }
    }
  };
  try {
    for (;;) {
      finish?.serve();
      readLog();
      // Refused: tried again at the next poll. Sent but not acknowledged: sent again (requestPromotion).
      if (!promoteReceived && !promoted && (promoteSentAt === undefined || Date.now() - promoteSentAt >= resendAfter)) {
        const r = await promote!();
        if (r.sent) {
          if (promoteSentAt !== undefined) resendAfter = Math.min(2 * resendAfter, PROMOTE_RESEND_MAX_MS);
          promoteSentAt = Date.now();
        } else if (promoteSentAt === undefined && Date.now() - started > STARTUP_GRACE_MS) throw new PgarkError(`pg_ctl promote failed for ${STARTUP_GRACE_MS / 1000} s: ${r.why}`, 1, `server log: ${logFile}; the server is still in standby mode: promote it with pg_ctl promote`);
      }
      if (!promoted && ++polls % SERVER_POLL_EVERY === 0) {
        // The log may go elsewhere (logging_collector): ask the server too, once it accepts connections.
        const server = await recoveryState(pgdata, user);
        if (server) {
          replayLsn = server.replayLsn ?? replayLsn;
          // Out of recovery between the log read above and this question: the log has its new timeline by now.
          if (!server.inRecovery) {
            promoted = true;
            readLog();
          }
        }
      }
      if (promoted) break;
      const state = postmasterState(pgdata);
      if (state === 'alive') seenRunning = true;
      // What the server wrote between the read above and its exit: its FATAL line, often.
      if (state !== 'alive') {
        const rest = readFrom(logFile, offset);
        offset += rest.length;
        partial += decoder.write(rest);
      }
      const fatal = [...(text + partial).matchAll(new RegExp(FATAL, 'g'))].map((m) => m[2]).filter((m) => !CONNECTION_REFUSALS.test(m));
      const dead = state === 'gone' || (state === 'starting' && (seenRunning || fatal.length > 0 || Date.now() - started > STARTUP_GRACE_MS));
      if (dead) {
        const why = [...(text + partial).matchAll(ABORT_LINE)].at(-1)?.[1];
        const server = fatal.length ? `: ${fatal[fatal.length - 1]}` : '';
        throw new PgarkError(
          why ? `${ABORT_RECOVERY_MARK} ${why} (PostgreSQL stopped${server})` : `PostgreSQL stopped during recovery${server}`,
          1,
          `server log: ${logFile}; the data directory is left as it is for inspection`,
        );
      }
      await new Promise((r) => setTimeout(r, LOG_POLL_MS));
    }
  } finally {
    ticker.stop();
  }
  // A request sent again while the startup process was promoting leaves its file behind; a promoted
  // server never reads it (PostgreSQL deletes leftovers at its next start too).
  if (promoteSentAt !== undefined) rmSync(join(pgdata, 'promote'), { force: true });
  const short = archiveEnd && replayEndProblem(pgdata, archiveEnd);
  if (short) throw new PgarkError(`PostgreSQL promoted, but ${short}`, 1, `server log: ${logFile}; the server is running on partial data`);
  outcome.seconds = (Date.now() - started) / 1000;
  return outcome;
}

/**
 * The PostgreSQL client library is loaded only once a server is to be asked: a restore without
 * --start never connects, and loading it cost every restore (and restore_command) about 45 ms of CPU.
 */
async function pgClient(config: ClientConfig): Promise<Client> {
  const { default: pg } = await import('pg');
  return new pg.Client(config);
}

async function recoveryState(pgdata: string, user: string): Promise<{ inRecovery: boolean; replayLsn?: string } | undefined> {
  const conn = connectionFromPidFile(pgdata);
  if (!conn) return undefined;
  const client = await pgClient({ host: conn.host, port: conn.port, user, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ rec: boolean; lsn: string | null }>('SELECT pg_catalog.pg_is_in_recovery() AS rec, pg_catalog.pg_last_wal_replay_lsn()::text AS lsn');
    return { inRecovery: r.rows[0].rec, replayLsn: r.rows[0].lsn ?? undefined };
  } catch {
    // Not accepting connections yet (before consistency, or hot_standby off).
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface DatabaseReport {
  database: string;
  owner: string;
  actions: string[];
  warnings: string[];
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** After promotion: the application database and owner, as CNPG's ConfigureNewInstance. */
export async function ensureApplicationDatabase(conn: ConnectionInfo, user: string, database: string, owner: string): Promise<DatabaseReport> {
  const client = await pgClient({ host: conn.host, port: conn.port, user, database: 'postgres' });
  await client.connect();
  const report: DatabaseReport = { database, owner, actions: [], warnings: [] };
  try {
    const role = await client.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [owner]);
    if (role.rowCount === 0) {
      await client.query(`CREATE ROLE ${ident(owner)} LOGIN`);
      report.actions.push(`created role ${owner} (LOGIN)`);
    }
    const db = await client.query<{ owner: string }>('SELECT pg_catalog.pg_get_userbyid(datdba) AS owner FROM pg_catalog.pg_database WHERE datname = $1', [database]);
    if (db.rowCount === 0) {
      await client.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(owner)}`);
      report.actions.push(`created database ${database} owned by ${owner}`);
    } else if (db.rows[0].owner !== owner) {
      report.warnings.push(`database ${database} exists but is owned by ${db.rows[0].owner}, not ${owner} (left untouched, as CNPG does)`);
    } else {
      report.actions.push(`verified database ${database} exists, owned by ${owner}`);
    }
  } finally {
    await client.end();
  }
  return report;
}

/** pg_is_in_recovery() and archive_command of the running server, for the final report. */
export interface ServerState {
  inRecovery: boolean;
  archiveCommand: string;
  /** '' once the reload asked for at the end of recovery is applied (a reload can clear it, PostgreSQL 12+). */
  recoveryEndCommand: string;
  timeline: number;
}

export async function serverState(conn: ConnectionInfo, user: string): Promise<ServerState> {
  const client = await pgClient({ host: conn.host, port: conn.port, user, database: 'postgres' });
  await client.connect();
  try {
    const r = await client.query<{ rec: boolean; ac: string; rec_end: string; tli: number }>(
      `SELECT pg_catalog.pg_is_in_recovery() AS rec, current_setting('archive_command') AS ac, current_setting('recovery_end_command') AS rec_end, ${CURRENT_TIMELINE_SQL} AS tli`,
    );
    return { inRecovery: r.rows[0].rec, archiveCommand: r.rows[0].ac, recoveryEndCommand: r.rows[0].rec_end, timeline: Number(r.rows[0].tli) };
  } finally {
    await client.end();
  }
}
