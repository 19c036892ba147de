/**
 * Peak memory of `pgark logical backup` and of the restore tool while they stream a large database,
 * next to the same figures for a small one: bounded memory means the two are about equal.
 *
 *   npm run build && node dist/bench/logical-memory.js [big-rows=4000000] [small-rows=40000] [--base DIR]
 *
 * 4,000,000 rows of ~256 bytes is about 1 GB on disk. Dumps go to s3rver (the real S3 driver with
 * multipart uploads) and are restored into a second PostgreSQL 15. RSS is sampled from
 * /proc/<pid>/status of the pgark node process every 100 ms; VmHWM (the kernel's own peak) is read
 * in the same samples, and its CPU seconds (user + system, not pg_dump's or psql's) from /proc/<pid>/stat.
 * --base DIR: the same runs with DIR/bin/pgark.js too (a build of another commit, e.g. a worktree of
 * main), each one right after this tree's, so that both see the same load.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../test/harness/postgres.js';
import { startS3rver, type S3rver } from '../test/harness/s3rver.js';
import { s3RestoreEnv } from '../test/logical/helpers.js';
import { loadavg } from 'node:os';
import { cpuSeconds, option, procStatusKiB } from './util.js';

interface Sampled {
  code: number | null;
  seconds: number;
  cpu: number;
  peakRssMiB: number;
  hwmMiB: number;
  stdout: string;
  stderr: string;
}

function runSampled(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sampled> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { env: { ...env, NODE_NO_WARNINGS: '1', PGARK_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    let hwm = 0;
    let cpu = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setInterval(() => {
      peak = Math.max(peak, procStatusKiB(child.pid!, 'VmRSS'));
      hwm = Math.max(hwm, procStatusKiB(child.pid!, 'VmHWM'));
      try {
        cpu = cpuSeconds(child.pid!);
      } catch {
        // Gone between two samples: the last reading stands (at most 100 ms short).
      }
    }, 100);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, seconds: (Date.now() - started) / 1000, cpu, peakRssMiB: peak / 1024, hwmMiB: hwm / 1024, stdout, stderr });
    });
  });
}

const PAYLOAD = [0, 1, 2, 3, 4, 5, 6].map((k) => `md5((g * 7 + ${k})::text)`).join(' || ') + " || 'ä'";

async function fill(pg: PgServer, db: string, rows: number): Promise<number> {
  await pg.query(`CREATE DATABASE ${db}`);
  await pg.query('CREATE TABLE big (id bigint PRIMARY KEY, payload text)', [], db);
  const batch = 500_000;
  for (let from = 1; from <= rows; from += batch) {
    const to = Math.min(rows, from + batch - 1);
    // Seven distinct md5s per row: hex text that gzip shrinks about 2x, like real data rather than repeats.
    await pg.query(`INSERT INTO big SELECT g, ${PAYLOAD} FROM generate_series(${from}, ${to}) g`, [], db);
  }
  const [r] = await pg.query<{ b: string }>(`SELECT pg_database_size('${db}')::text AS b`);
  return Number(r.b);
}

async function measure(src: PgServer, dst: PgServer, s3: S3rver, db: string, rows: number): Promise<void> {
  const size = await fill(src, db, rows);
  for (const [label, dir] of [['pgark', process.cwd()], ...(BASE ? [['base', BASE]] : [])]) await measureTool(label, join(dir, 'bin', 'pgark.js'), src, dst, s3, db, size);
}

async function measureTool(label: string, pgark: string, src: PgServer, dst: PgServer, s3: S3rver, db: string, size: number): Promise<void> {
  await dst.query(`DROP DATABASE IF EXISTS ${db}`);
  const backupEnv = {
    ...process.env,
    PGHOST: src.host,
    PGPORT: String(src.port),
    PGUSER: 'postgres',
    SCOPE: 'bench',
    LOGICAL_BACKUP_S3_BUCKET: s3.bucket,
    LOGICAL_BACKUP_S3_ENDPOINT: s3.endpoint,
    LOGICAL_BACKUP_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
  const b = await runSampled(process.execPath, [pgark, 'logical', 'backup', '--database', db, '--json'], backupEnv);
  if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  const dump = (JSON.parse(b.stdout) as { dumps: { key: string; size: number }[] }).dumps[0];
  const r = await runSampled(process.execPath, [pgark, 'logical', 'restore'], s3RestoreEnv(s3, dst, db, `spilo/${dump.key}`));
  if (r.code !== 0) throw new Error(`restore failed: ${r.stderr}`);
  const [check] = await dst.query<{ n: string }>('SELECT count(*) AS n FROM big', [], db);
  const [want] = await src.query<{ n: string }>('SELECT count(*) AS n FROM big', [], db);
  if (check.n !== want.n) throw new Error(`restored ${check.n} rows, expected ${want.n}`);
  const mib = (n: number) => (n / 1048576).toFixed(0);
  console.log(
    `${label} ${db}: database ${mib(size)} MiB, dump ${mib(dump.size)} MiB (gzip) | ` +
      `backup ${b.seconds.toFixed(1)} s, ${b.cpu.toFixed(1)} CPU s, peak RSS ${b.peakRssMiB.toFixed(0)} MiB (VmHWM ${b.hwmMiB.toFixed(0)}) | ` +
      `restore ${r.seconds.toFixed(1)} s, ${r.cpu.toFixed(1)} CPU s, peak RSS ${r.peakRssMiB.toFixed(0)} MiB (VmHWM ${r.hwmMiB.toFixed(0)}) | ` +
      `load ${loadavg()[0].toFixed(1)}`,
  );
}

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const bigRows = Number(positional[0] ?? 4_000_000);
const smallRows = Number(positional[1] ?? 40_000);
const BASE = option('base');
const [src, dst, s3] = await Promise.all([startPostgres({ major: 15 }), startPostgres({ major: 15 }), startS3rver({ front: false })]);
try {
  await measure(src, dst, s3, 'small', smallRows);
  await measure(src, dst, s3, 'large', bigRows);
} finally {
  await Promise.allSettled([src.destroy(), dst.destroy(), s3.stop()]);
}
