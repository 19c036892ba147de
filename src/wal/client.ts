/**
 * `pgark wal-archive` and `pgark wal-restore` as PostgreSQL runs them (archive_command,
 * restore_command): a small client that loads no SDK and no CLI framework. It answers from the
 * spools when it can (a segment the daemon already stored, a segment already prefetched), and
 * otherwise hands the request to the resident WAL daemon of this data directory, starting it when
 * needed. When the daemon cannot be reached, or cannot be trusted, it does the work in-process
 * (correct, only slower) and says why on stderr.
 *
 * Exit codes: 0 stored / restored; 1 failed or (restore) not found; 2 bad arguments or manifest;
 * 3 (restore) not a WAL file name; 255 (restore) the stored object is damaged, which makes
 * PostgreSQL abort the recovery rather than end it there (restore.ts). One line on stderr says why.
 */
import { chownSync, closeSync, fchownSync, mkdirSync, openSync, readFileSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeMessage, newNonce, proofMatches, prove, type Challenge, type ConfigRef, type Sealed, type WalReply, type WalRequest } from './protocol.js';
import { PgarkError } from '../util/errors.js';
import { DAEMON_MALLOC_ENV, LEAN_NODE_FLAGS } from '../util/gc.js';
import { checkEnvironment, COMMAND_OPTIONS, flagNames, OPTIONS, setting, type OptionSpec } from '../util/options.js';
import { archiveMarkerMatches, ensureRuntimeDirs, restoreSpoolDir, restoreSpoolLive, runtimeDirProblem, takeSpooledFile, walRuntime, type WalRuntime } from './runtime.js';

export type WalCommand = 'wal-archive' | 'wal-restore';

export interface WalClientOptions {
  config: ConfigRef;
  pgdata?: string;
  /** Work in this process, without the daemon. */
  noDaemon: boolean;
  positional: string[];
  /** WalRuntime.instance: the daemon of a barman-cloud drop-in's store key. */
  instance?: string;
}

class UsageError extends Error {}

/** The flags of wal-archive / wal-restore as either parser (this one, or commander's) read them. */
export interface WalFlags {
  file: string[];
  secretsDir?: string;
  cluster?: string;
  source?: string;
  pgdata?: string;
  noDaemon: boolean;
}

/**
 * Where a command line is read: the directory relative paths start from, and PGARK_CONFIG. A
 * process's own by default; the WAL daemon reads an archive request bin/pgark left (archive-requests.ts) in the caller's.
 */
export interface ArgvContext {
  cwd: string;
  configFile: string | undefined;
}

const ownContext = (): ArgvContext => ({ cwd: process.cwd(), configFile: setting('file') });

/** Adds the environment's defaults (PGARK_CONFIG, PGARK_WAL_NO_DAEMON) and checks the manifests and operands. */
export function walClientOptions(command: WalCommand, flags: WalFlags, positional: string[], context = ownContext()): WalClientOptions {
  const fromEnv = context.configFile;
  const files = flags.file.length > 0 ? flags.file : fromEnv ? [fromEnv] : [];
  if (files.length === 0) throw new UsageError('no manifest: pass -f /path/to/cluster.yaml or set PGARK_CONFIG');
  const want = command === 'wal-archive' ? 1 : 2;
  if (positional.length !== want) {
    throw new UsageError(command === 'wal-archive' ? 'usage: pgark wal-archive -f CLUSTER.yaml %p' : 'usage: pgark wal-restore -f CLUSTER.yaml [--source NAME] %f %p');
  }
  const config: ConfigRef = { files: files.map((f) => resolve(context.cwd, f)) };
  if (flags.secretsDir) config.secretsDir = resolve(context.cwd, flags.secretsDir);
  if (flags.cluster) config.cluster = flags.cluster;
  if (flags.source) config.source = flags.source;
  const envNoDaemon = setting(command === 'wal-archive' ? 'archiveNoDaemon' : 'restoreNoDaemon');
  return { config, pgdata: flags.pgdata, noDaemon: flags.noDaemon || envNoDaemon === true, positional };
}

const OTHER: Record<WalCommand, WalCommand> = { 'wal-archive': 'wal-restore', 'wal-restore': 'wal-archive' };

/** node:util parseArgs' options for a command's entries of the option table (the fast paths parse without commander). */
export function parseConfig(command: keyof typeof COMMAND_OPTIONS): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  const config: ReturnType<typeof parseConfig> = {};
  for (const name of COMMAND_OPTIONS[command]) {
    const spec: OptionSpec = OPTIONS[name];
    const { long, short, takesValue } = flagNames(spec);
    config[long.slice(2)] = { type: takesValue ? 'string' : 'boolean', multiple: spec.type.kind === 'list', ...(short && { short: short.slice(1) }) };
  }
  return config;
}

/** Parses the options of the fast path with the option table's definitions of the command. */
export function parseWalArgs(command: WalCommand, args: string[], context = ownContext()): WalClientOptions {
  const options = parseConfig(command);
  // Not strict: parseArgs' own errors would not say that --source belongs to wal-restore.
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (!(t.name in options)) {
      throw new UsageError(t.name in parseConfig(OTHER[command]) ? `option ${t.rawName} is for ${OTHER[command]} only` : `unknown option ${t.rawName}`);
    }
    if (options[t.name].type === 'string' && t.value === undefined) throw new UsageError(`option ${t.rawName} needs a value`);
  }
  const text = (name: string) => values[name] as string | undefined;
  const flags: WalFlags = {
    file: (values.file as string[] | undefined) ?? [],
    secretsDir: text('secrets-dir'),
    cluster: text('cluster'),
    source: text('source'),
    pgdata: text('pgdata'),
    noDaemon: values['no-daemon'] === true,
  };
  return walClientOptions(command, flags, positionals, context);
}

/** PGDATA: --pgdata, else the parent of pg_wal in %p (PostgreSQL runs us in PGDATA), else $PGDATA, else cwd. */
function dataDirectory(explicit: string | undefined, walPath: string): string {
  if (explicit) return resolve(explicit);
  const dir = dirname(walPath);
  if (basename(dir) === 'pg_wal') return dirname(dir);
  return resolve(setting('pgdata') ?? process.cwd());
}

const DAEMON_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'daemon-main.js');
const DAEMON_START_TIMEOUT_MS = 10_000;
const DAEMON_RESPAWN_MS = 1_000;
const MAX_LOG_BYTES = 10 * 1024 * 1024;

/** The server's OS user, when this process (root) starts the daemon on its behalf (warmRestore). */
export interface DaemonUser {
  uid: number;
  gid: number;
}

// node:net and node:child_process are loaded only when the spool cannot answer: the fast path pays nothing for them.
/** Spawns a detached daemon, as `as` when given; returns its PID. */
async function startDaemon(rt: WalRuntime, as?: DaemonUser): Promise<number | undefined> {
  const { spawn } = await import('node:child_process');
  if (as) {
    // The daemon checks and creates the rest itself, as the user whose directory it must be.
    mkdirSync(rt.dir, { recursive: true, mode: 0o700 });
    chownSync(rt.dir, as.uid, as.gid);
  } else {
    ensureRuntimeDirs(rt);
  }
  try {
    if (statSync(rt.logFile).size > MAX_LOG_BYTES) truncateSync(rt.logFile, 0);
  } catch {
    // no log yet
  }
  const log = openSync(rt.logFile, 'a', 0o600);
  try {
    if (as) fchownSync(log, as.uid, as.gid);
    // The daemon is resident: it runs lean like the sidecar (util/gc.ts), unless the environment says otherwise.
    const env = { ...DAEMON_MALLOC_ENV, ...process.env };
    const child = spawn(process.execPath, [...LEAN_NODE_FLAGS, DAEMON_MAIN, rt.pgdata, ...(rt.instance ? [rt.instance] : [])], {
      detached: true,
      stdio: ['ignore', 'ignore', log],
      cwd: rt.pgdata,
      env,
      uid: as?.uid,
      gid: as?.gid,
    });
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

type Exchange = { reply: WalReply } | { failure: 'unreachable' | 'dropped' } | { untrusted: string };

/**
 * One request/reply over the daemon socket, after the challenge-response of protocol.ts. Whatever
 * does not prove it knows the key is untrusted: it may be another user's process on the socket.
 */
async function exchange(rt: WalRuntime, req: WalRequest, timeoutMs: number): Promise<Exchange> {
  const { connect } = await import('node:net');
  const untrusted = `something answered on ${rt.socketPath} without proving it knows the WAL daemon's key (${rt.keyFile})`;
  return new Promise((resolvePromise) => {
    const sock = connect(rt.socketPath);
    let buf = '';
    let connected = false;
    let settled = false;
    let challenge: string | undefined;
    let nonce = '';
    let key = '';
    const done = (r: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolvePromise(r);
    };
    const timer = setTimeout(
      () => done({ reply: { ok: false, message: `no answer from the WAL daemon within ${timeoutMs / 1000} s`, exitCode: 1 } }),
      timeoutMs,
    );
    const onLine = (line: string) => {
      let msg: Partial<Challenge & Sealed>;
      try {
        msg = JSON.parse(line) as Partial<Challenge & Sealed>;
      } catch {
        return done({ untrusted });
      }
      if (challenge === undefined) {
        if (typeof msg.challenge !== 'string') return done({ untrusted });
        challenge = msg.challenge;
        try {
          key = readFileSync(rt.keyFile, 'utf8');
        } catch {
          return done({ untrusted });
        }
        nonce = newNonce();
        const body = JSON.stringify(req);
        sock.write(encodeMessage({ nonce, body, proof: prove(key, 'client', challenge, nonce, body) }));
        return;
      }
      if (typeof msg.body !== 'string' || !proofMatches(prove(key, 'daemon', challenge, nonce, msg.body), msg.proof)) return done({ untrusted });
      done({ reply: JSON.parse(msg.body) as WalReply });
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => (connected = true));
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0 && !settled; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line);
      }
    });
    sock.on('error', () => done({ failure: connected ? 'dropped' : 'unreachable' }));
    sock.on('close', () => done({ failure: connected ? 'dropped' : 'unreachable' }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The daemon's reply, or why the work has to be done in this process. */
type DaemonOutcome = { reply: WalReply } | { fallback: string };

/**
 * Sends the request to the daemon, starting it if nobody listens. A daemon that dies mid-request
 * (kill -9) is replaced and the request repeated: every request is idempotent.
 */
async function viaDaemon(rt: WalRuntime, req: WalRequest, as?: DaemonUser): Promise<DaemonOutcome> {
  const timeoutMs = setting('walTimeoutSeconds') * 1000;
  let firstSpawn: number | undefined;
  let lastSpawn = 0;
  let spawned: number | undefined;
  let drops = 0;
  for (;;) {
    const r = await exchange(rt, req, timeoutMs);
    if ('reply' in r) return r;
    if ('untrusted' in r) return { fallback: r.untrusted };
    if (r.failure === 'dropped') {
      if (++drops > 2) return { fallback: `the WAL daemon on ${rt.socketPath} closed the connection ${drops} times without answering` };
      continue; // the daemon died mid-request: the next attempt starts another one
    }
    const now = Date.now();
    if (firstSpawn !== undefined && now - firstSpawn > DAEMON_START_TIMEOUT_MS) {
      return { fallback: `no WAL daemon answered on ${rt.socketPath} within ${DAEMON_START_TIMEOUT_MS / 1000} s of starting one (its log: ${rt.logFile})` };
    }
    // Spawn again now and then: the first spawn may have lost the lock to a daemon that then exited.
    // Not while the daemon we spawned still lives: on a loaded machine a Node start can take longer
    // than DAEMON_RESPAWN_MS, and each spawn more is one more Node start competing with the daemon
    // that is starting (ten for one call at a load of 18). A spawned child that lost the lock exits
    // and is reaped by this process, so its PID names nobody else. (daemon.lock's PID is no such
    // proof: after a kill -9 it may name any process.)
    if (now - lastSpawn > DAEMON_RESPAWN_MS && !alive(spawned)) {
      try {
        spawned = await startDaemon(rt, as);
      } catch (err) {
        return { fallback: `could not start the WAL daemon: ${(err as Error).message}` };
      }
      firstSpawn ??= now;
      lastSpawn = now;
    }
    await sleep(25);
  }
}

/**
 * The daemon's answer, else the work done here. Falling back says why, once, on stderr (which
 * PostgreSQL logs): a client that keeps working in-process is correct but several times slower.
 */
async function run(command: WalCommand, rt: WalRuntime, req: WalRequest, pgdata: string, opts: WalClientOptions, untrustedDir: string | undefined): Promise<WalReply> {
  if (!opts.noDaemon) {
    const outcome = untrustedDir ? { fallback: untrustedDir } : await viaDaemon(rt, req);
    if ('reply' in outcome) return outcome.reply;
    process.stderr.write(`pgark ${command}: not using the WAL daemon: ${outcome.fallback}; working in this process instead (slower)\n`);
  }
  return inProcess(req, pgdata);
}

/** Who answered this process's request, for the debug line of walRestore. */
let answeredBy: 'the daemon' | 'the spool' | 'this process' = 'the daemon';

async function inProcess(req: WalRequest, pgdata: string): Promise<WalReply> {
  answeredBy = 'this process';
  const { runInProcess } = await import('./in-process.js');
  return runInProcess(req, pgdata);
}

function report(command: WalCommand, reply: WalReply): number {
  if (reply.ok) return 0;
  process.stderr.write(`pgark ${command}: ${reply.message}${reply.hint ? ` (hint: ${reply.hint})` : ''}\n`);
  return reply.exitCode || 1;
}

export async function walArchive(opts: WalClientOptions): Promise<number> {
  return report('wal-archive', await archiveReply(opts));
}

/** Stores the WAL file positional[0]: from the archive spool's marker, through the daemon, or in this process. */
export async function archiveReply(opts: WalClientOptions): Promise<WalReply> {
  const path = resolve(opts.positional[0]);
  const pgdata = dataDirectory(opts.pgdata, path);
  const rt = walRuntime(pgdata, opts.instance);
  const name = basename(path);
  const marker = join(rt.archiveSpool, name);
  // A marker in a directory others can write proves nothing.
  const untrustedDir = runtimeDirProblem(rt);
  if (!untrustedDir && archiveMarkerMatches(marker, path)) {
    try {
      unlinkSync(marker);
    } catch {
      // a concurrent sweep removed it; the segment is stored either way
    }
    return { ok: true };
  }
  const req: WalRequest = { op: 'archive', path, config: opts.config };
  return run('wal-archive', rt, req, pgdata, opts, untrustedDir);
}

export async function walRestore(opts: WalClientOptions): Promise<number> {
  const reply = await restoreReply(opts);
  if (['debug', 'trace'].includes(setting('logLevel'))) {
    // Each Node start is tens of ms of CPU on PostgreSQL's replay path: say which call paid for one, and what it cost.
    const outcome = reply.ok ? 'restored' : reply.notFound ? 'not found' : 'failed';
    process.stderr.write(`pgark wal-restore: ${opts.positional[0]} ${outcome} by ${answeredBy} through Node in ${Math.round(process.uptime() * 1000)} ms (done at ${new Date().toISOString().slice(11, 23)})\n`);
  }
  if (!reply.ok && reply.notFound) {
    process.stderr.write(`pgark wal-restore: ${reply.message}\n`);
    return 1;
  }
  return report('wal-restore', reply);
}

/** Writes WAL file positional[0] to positional[1]: from the restore spool, through the daemon, or in this process. */
export async function restoreReply(opts: WalClientOptions): Promise<WalReply> {
  const [name, destArg] = opts.positional;
  const dest = resolve(destArg);
  const pgdata = dataDirectory(opts.pgdata, dest);
  const rt = walRuntime(pgdata, opts.instance);
  const untrustedDir = runtimeDirProblem(rt);
  // Spooled segments are not fsynced: only the daemon that wrote them, still running, vouches for them.
  if (!opts.noDaemon && !untrustedDir && !name.includes('/') && restoreSpoolLive(rt) && takeSpooledFile(join(restoreSpoolDir(rt, opts.config), name), dest)) {
    answeredBy = 'the spool';
    // Keep the prefetch window ahead; the daemon answers at once, and its absence is no error.
    await exchange(rt, { op: 'restore-served', name, config: opts.config }, 2000);
    return { ok: true };
  }
  const req: WalRequest = { op: 'restore', name, dest, config: opts.config };
  return run('wal-restore', rt, req, pgdata, opts, untrustedDir);
}

/**
 * `pgark restore --start`, before PostgreSQL starts: the daemon of `pgdata` (started as the
 * server's user `as` when this process is root) fetches `first` and what follows into the restore
 * spool of `config` (exactly restore_command's), and lists the history files PostgreSQL probes
 * first. Returns why it could not, undefined when it did; the restore works either way.
 */
export async function warmRestore(pgdata: string, config: ConfigRef, first: string, segmentSize: number, as?: DaemonUser): Promise<string | undefined> {
  const rt = walRuntime(pgdata);
  // A socket directory under the temp directory is named by this process's uid, not the server's.
  if (as && rt.socketDir !== rt.dir) return `the socket path under ${rt.dir} is too long to share with the server's user`;
  const outcome = await viaDaemon(rt, { op: 'restore-warm', name: first, config, segmentSize }, as);
  if ('fallback' in outcome) return outcome.fallback;
  return outcome.reply.ok ? undefined : outcome.reply.message;
}

/** Entry used by bin/pgark.js for `pgark wal-archive ...` / `pgark wal-restore ...`. */
export async function main(argv: string[]): Promise<void> {
  const command = argv[2] as WalCommand;
  // Our stderr lands in PostgreSQL's log: one line per failure, no SDK notices (in-process fallback, daemon).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  try {
    checkEnvironment();
    const opts = parseWalArgs(command, argv.slice(3));
    process.exitCode = command === 'wal-archive' ? await walArchive(opts) : await walRestore(opts);
  } catch (err) {
    const hint = err instanceof PgarkError && err.hint ? ` (hint: ${err.hint})` : '';
    process.stderr.write(`pgark ${command}: ${(err as Error).message}${hint}\n`);
    process.exitCode = err instanceof UsageError ? 2 : err instanceof PgarkError ? err.exitCode : 1;
  }
}
