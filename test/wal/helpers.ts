/**
 * Shared pieces of the WAL tests: running the pgark CLI as PostgreSQL would, crafted WAL segments
 * with a real long page header, a fake data directory with archive_status, and manifests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { walRuntime } from '../../src/wal/runtime.js';

export const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');
export { PGARK_LAUNCHER } from '../harness/wal-processes.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runPgark(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PGARK, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, PGARK_WAL_DAEMON_IDLE_SECONDS: '5', ...opts.env },
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A 16 MiB segment whose first page has a long header naming timeline and system identifier; the rest is semi-random. */
export function craftSegment(name: string, systemIdentifier = 7300000000000000001n, fill?: Buffer): Buffer {
  const size = 16 * 1024 * 1024;
  const data = Buffer.alloc(size);
  const tli = parseInt(name.slice(0, 8), 16);
  data.writeUInt16LE(0xd110, 0);
  data.writeUInt16LE(0x0002, 2);
  data.writeUInt32LE(tli, 4);
  // xlp_pageaddr: where the segment starts, as restore checks against the name.
  data.writeBigUInt64LE(BigInt(parseInt(name.slice(8, 16), 16) * 256 + parseInt(name.slice(16, 24), 16)) * BigInt(size), 8);
  data.writeBigUInt64LE(systemIdentifier, 24);
  data.writeUInt32LE(size, 32);
  data.writeUInt32LE(8192, 36);
  (fill ?? randomBytes(64 * 1024)).copy(data, 64);
  return data;
}

export interface FakePgdata {
  pgdata: string;
  walDir: string;
  /** Writes a WAL file into pg_wal and marks it .ready; returns its relative %p path. */
  addReady(name: string, data: Buffer): string;
}

export function fakePgdata(base: string): FakePgdata {
  const pgdata = join(base, 'data');
  const walDir = join(pgdata, 'pg_wal');
  mkdirSync(join(walDir, 'archive_status'), { recursive: true });
  return {
    pgdata,
    walDir,
    addReady(name, data) {
      writeFileSync(join(walDir, name), data);
      writeFileSync(join(walDir, 'archive_status', `${name}.ready`), '');
      return `pg_wal/${name}`;
    },
  };
}

/** Stops the WAL daemon of a data directory (SIGTERM to the pid in its lock), if one runs. */
export async function stopWalDaemon(pgdata: string): Promise<void> {
  const lock = walRuntime(pgdata).lockFile;
  if (!existsSync(lock)) return;
  const pid = Number(readFileSync(lock, 'utf8'));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(pid, 'SIGKILL');
}

/** Runs a barman-cloud client; resolves with its exit code and output. */
export function runBarman(tool: string, args: string[], env: Record<string, string>): RunResult {
  const r = spawnSync(tool, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
