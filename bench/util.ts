/**
 * What several benchmarks share: their --name value options, what /proc says about a process, and
 * a backlog of ready WAL segments written by a real PostgreSQL 15 with the data directories and
 * store byte counts the WAL benchmarks measure with.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientTool } from '../src/pg/binaries.js';
import { runPgTool } from '../src/pg/local-server.js';
import { startPostgres } from '../test/harness/postgres.js';
import type { S3rver } from '../test/harness/s3rver.js';

/** The value after --name on the command line, if given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

export function numberOption(name: string, fallback: number): number {
  const value = option(name);
  return value === undefined ? fallback : Number(value);
}

/** A "Name: N kB" field of /proc/<pid>/status (VmRSS, VmHWM) in KiB; 0 once the process is gone. */
export function procStatusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds a live process has used so far (user + system), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5) (the split starts at field 3), in clock ticks of 1/100 s on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Ready 16 MiB segments in a stopped server's pg_wal (pgbench plus md5 text, which compresses about 2:1). */
export interface Backlog {
  pgdata: string;
  segments: string[];
  cleanup(): Promise<void>;
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

/** Bytes stored under a prefix of the s3rver bucket (its data directory mirrors the keys). */
export function storedBytes(s3: S3rver, prefix: string): number {
  let total = 0;
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('._S3rver_object')) total += statSync(p).size;
    }
  };
  walk(join(s3.dataDir, s3.bucket, prefix));
  return total;
}

