/**
 * Starting and stopping a PostgreSQL server on a local data directory with pg_ctl.
 * PostgreSQL refuses to run as root, so when pgark runs as root the server runs as an
 * unprivileged OS user (default "postgres") that owns the data directory.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PgBinaries } from './binaries.js';
import { PgarkError, UserError } from '../util/errors.js';
import { setting } from '../util/options.js';

export interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

/** The identity PostgreSQL processes run as: ourselves, or an unprivileged user when we are root. */
export function serverIdentity(user = setting('pgOsUser')): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return passwdEntry(user) ?? idOf(user);
}

/**
 * `user`'s uid and primary gid from /etc/passwd, where local users are (the postgres user of
 * Debian's packages and of images). Node has no getpwnam, and `id` run twice held the restore's
 * main thread for 70 ms before its download.
 */
function passwdEntry(user: string): RunAs | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? '')) return { uid: Number(uid), gid: Number(gid), user };
  }
  return undefined;
}

/** Users only NSS knows (LDAP, sssd): as `id` reports them. */
function idOf(user: string): RunAs {
  const id = (flag: string) => {
    try {
      return Number(execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
    } catch {
      throw new UserError(`the OS user "${user}" that PostgreSQL is to run as does not exist`, 'PostgreSQL refuses to run as root: create that user, or name another with PGARK_PG_OS_USER');
    }
  };
  return { uid: id('-u'), gid: id('-g'), user };
}

/**
 * Gives a directory tree to the server's user (no-op when not root). Only `path` itself must exist:
 * entries may vanish during the walk (under `restore --start` the WAL daemon already prefetches into
 * PGDATA/pgark-wal, renaming its .inflight files), and an entry that is gone needs no owner.
 */
export function chownTree(path: string, who: RunAs | undefined): void {
  if (!who) return;
  chownSync(path, who.uid, who.gid);
  if (statSync(path).isDirectory()) chownEntries(path, who);
}

function chownEntries(dir: string, who: RunAs): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isGone(err)) return;
    throw err;
  }
  for (const name of names) {
    const p = join(dir, name);
    try {
      chownSync(p, who.uid, who.gid);
      if (statSync(p).isDirectory()) chownEntries(p, who);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}

const isGone = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Creates a directory owned by the server's user. */
export function mkdirForServer(path: string, who: RunAs | undefined, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
  if (who) chownSync(path, who.uid, who.gid);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a PostgreSQL binary as the server's user and collects its output. */
export function runPgTool(
  bin: string,
  args: string[],
  opts: { who?: RunAs; env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, {
      uid: opts.who?.uid,
      gid: opts.who?.gid,
      cwd: opts.cwd ?? '/tmp',
      env: { ...process.env, ...opts.env, ...(opts.who ? { HOME: '/tmp', USER: opts.who.user } : {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
    // A tool that exits without reading stdin (pg_ctl stop on a stopped server) makes this write
    // fail with EPIPE; its exit code already tells the story, so the write error is not fatal.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

async function mustRun(bin: string, args: string[], opts: Parameters<typeof runPgTool>[2]): Promise<RunResult> {
  const r = await runPgTool(bin, args, opts);
  if (r.code !== 0) {
    throw new PgarkError(`${bin.split('/').pop()} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

export async function initdb(bin: PgBinaries, pgdata: string, who: RunAs | undefined, extraArgs: string[] = []): Promise<void> {
  await mustRun(bin.path('initdb'), ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', ...extraArgs], { who });
}

/** pg_ctl start with -w; logFile gets the server log. */
export async function pgCtlStart(
  bin: PgBinaries,
  pgdata: string,
  who: RunAs | undefined,
  opts: { logFile: string; options?: string; env?: NodeJS.ProcessEnv; timeoutSeconds?: number },
): Promise<void> {
  const args = ['-D', pgdata, '-l', opts.logFile, '-w', '-t', String(opts.timeoutSeconds ?? 120), 'start'];
  if (opts.options) args.push('-o', opts.options);
  await mustRun(bin.path('pg_ctl'), args, { who, env: opts.env });
}

export async function pgCtlStop(bin: PgBinaries, pgdata: string, who: RunAs | undefined, mode: 'fast' | 'immediate' | 'smart' = 'fast'): Promise<void> {
  await mustRun(bin.path('pg_ctl'), ['-D', pgdata, '-m', mode, '-w', '-t', '120', 'stop'], { who });
}
