/**
 * What the base-backup benchmarks share: the test database (pgbench data plus ~2:1 compressible
 * hex text), waiting for the archiver to be idle, and a command timed with its peak RSS.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { PgServer } from '../test/harness/postgres.js';

/** Runs a command under GNU time: wall seconds and its peak RSS (%M). */
export function timed(cmd: string, args: string[], env: Record<string, string>, uid?: number, gid?: number): Promise<{ code: number; seconds: number; rssKb: number; cpuSeconds: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS_KB=%M CPU_S=%U+%S', cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], uid, gid, cwd: '/tmp' });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const rssKb = Number(/MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0);
      const cpu = /CPU_S=([\d.]+)\+([\d.]+)/.exec(stderr);
      resolve({ code: code ?? 1, seconds, rssKb, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : 0, stderr });
    });
  });
}

/** pgbench at `scale` plus `textMb` MB of hex text, vacuumed and checkpointed. */
export async function loadBenchData(pg: PgServer, scale: number, textMb: number): Promise<void> {
  execFileSync(pg.bin.path('pgbench'), ['-i', '-q', '-s', String(scale), '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
  // Hex text compresses about 2:1 with gzip: 4 bits of entropy per 8-bit character.
  const rows = Math.round((textMb * 1e6) / 232);
  await pg.query(
    `CREATE TABLE random_text AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS t FROM generate_series(1, ${rows}) g`,
  );
  // Nothing left for autovacuum to do during the runs, and every page already written out.
  await pg.query('VACUUM (FREEZE, ANALYZE)');
  await pg.query('CHECKPOINT');
}

/** Switches WAL and waits until nothing is left to archive, so no run pays for another's WAL backlog. */
export async function waitArchiverIdle(pg: PgServer): Promise<void> {
  await pg.query('SELECT pg_switch_wal()');
  for (;;) {
    const [s] = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`);
    if (s.n === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}
