/**
 * What the WAL archiving benchmarks share: a backlog of ready segments produced by a real
 * PostgreSQL 15, a data directory per tool holding it, and PostgreSQL's way of calling
 * archive_command over it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres } from '../test/harness/postgres.js';
import { clientTool } from '../src/pg/binaries.js';
import { runPgTool } from '../src/pg/local-server.js';
import type { S3rver } from '../test/harness/s3rver.js';
import { cpuSeconds } from './util.js';

export interface Backlog {
  /** The stopped server's data directory. */
  pgdata: string;
  segments: string[];
  cleanup(): Promise<void>;
}

/** One archive_command call for %p (relative to the data directory); exit code 0 = archived. */
export type ArchiveCommand = (walPath: string) => Promise<{ code: number; stderr: string }>;

/** archive_command as a program PostgreSQL starts in the data directory. */
export function commandArchiver(pgdata: string, command: (walPath: string) => [string, string[]], env: NodeJS.ProcessEnv): ArchiveCommand {
  return (walPath) => {
    const [cmd, args] = command(walPath);
    return run(cmd, args, env, pgdata);
  };
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/** Produces the backlog with a real server; returns the data directory (stopped) and the segment names. */
export async function produceBacklog(count: number): Promise<Backlog> {
  const pg = await startPostgres({
    major: 15,
    settings: { archive_mode: 'on', archive_command: '/bin/false', max_wal_size: '16GB', checkpoint_timeout: '1h', wal_keep_size: 0 },
  });
  const status = join(pg.pgdata, 'pg_wal', 'archive_status');
  const ready = () => readdirSync(status).filter((f) => f.endsWith('.ready') && f.length === 24 + 6);
  const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-i', '-s', '2', '-q', 'postgres'], { who: pg.who });
  if (r.code !== 0) throw new Error(r.stderr);
  await pg.query('CREATE TABLE text_load (id bigserial, a text, b text)');
  while (ready().length < count + 1) {
    await Promise.all([
      pg.query(`INSERT INTO text_load (a, b) SELECT md5(random()::text) || md5(random()::text), md5(random()::text) FROM generate_series(1, 100000) i`),
      runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-n', '-c', '2', '-t', '500', 'postgres'], { who: pg.who }),
    ]);
  }
  await pg.stop('fast');
  const segments = ready().map((f) => f.slice(0, 24)).sort().slice(0, count);
  return { pgdata: pg.pgdata, segments, cleanup: () => pg.destroy() };
}

/** A data directory for one tool: pg_control and PG_VERSION copied, the backlog hard-linked and marked .ready. */
export function toolDataDir(base: string, source: string, segments: string[]): string {
  const pgdata = join(base, 'data');
  mkdirSync(join(pgdata, 'global'), { recursive: true });
  mkdirSync(join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
  copyFileSync(join(source, 'global', 'pg_control'), join(pgdata, 'global', 'pg_control'));
  copyFileSync(join(source, 'PG_VERSION'), join(pgdata, 'PG_VERSION'));
  for (const s of segments) {
    linkSync(join(source, 'pg_wal', s), join(pgdata, 'pg_wal', s));
    writeFileSync(join(pgdata, 'pg_wal', 'archive_status', `${s}.ready`), '');
  }
  return pgdata;
}

/**
 * Calls archive_command for each segment like PostgreSQL: in order, one at a time, retrying a
 * failure after 1 s, and skipping a segment whose .ready file is gone (PostgreSQL 15 checks it
 * before each call).
 */
export async function drain(pgdata: string, segments: string[], archive: ArchiveCommand): Promise<number> {
  const t0 = performance.now();
  for (const s of segments) {
    if (!existsSync(join(pgdata, 'pg_wal', 'archive_status', `${s}.ready`))) continue;
    for (let attempt = 1; ; attempt++) {
      const r = await archive(`pg_wal/${s}`);
      if (r.code === 0) break;
      if (attempt >= 5) throw new Error(`archive_command failed 5 times on ${s}: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
    try {
      renameSync(join(pgdata, 'pg_wal', 'archive_status', `${s}.ready`), join(pgdata, 'pg_wal', 'archive_status', `${s}.done`));
    } catch {
      // marked .done meanwhile (PostgreSQL only warns)
    }
  }
  return (performance.now() - t0) / 1000;
}

/**
 * drain(), also returning how busy the store's process was meanwhile (1 = one core). Dirty pages
 * are flushed first, so no tool inherits the writeback of the backlog or of the tool before it.
 */
export async function timedDrain(s3: S3rver, ...args: Parameters<typeof drain>): Promise<{ seconds: number; storeBusy: number }> {
  execFileSync('sync');
  const cpu0 = cpuSeconds(s3.pid);
  const seconds = await drain(...args);
  return { seconds, storeBusy: (cpuSeconds(s3.pid) - cpu0) / seconds };
}
