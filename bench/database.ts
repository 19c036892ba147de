/** The database the backup and restore benchmarks share: pgbench plus text that compresses about 2:1, and waiting for its archiver. */
import { execFileSync } from 'node:child_process';
import type { PgServer } from '../test/harness/postgres.js';

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
