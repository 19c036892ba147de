/**
 * What age encryption costs: the same work with and without `pgark.io/encryption`, interleaved in
 * one run (plain then encrypted, then encrypted then plain, ...) so that the load other processes
 * put on this machine, and its drift, fall on both alike. Both parts go to one plain-http s3rver.
 *
 *   - archive: a backlog of real 16 MiB segments (pgbench) archived by wal/archive with a
 *     compression pool and wal.maxParallel uploads in flight, as the resident daemon does;
 *   - backup: `pgark backup` of a pgbench database plus ~2:1 text, wall time of the command.
 *
 *   node dist/bench/encryption.js [--segments 24] [--rounds 3] [--codec lz4] [--scale 20] [--text-mb 100]
 *
 * Prints each run, then per part the median plain and encrypted rates and the cost, with the
 * spread (min..max of the per-round costs), and the CPU seconds each side used (user + system:
 * for the archive the whole bench process, which also runs the s3rver front's signature checks;
 * for the backup the pgark process). On a machine shared with other work, CPU time is the
 * steadier measure of what encryption adds; wall-clock rates move with the neighbours' load,
 * which is printed (1-minute load average) at the start, after each part and at the end.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { CompressionPool } from '../src/codec/pool.js';
import type { CodecName } from '../src/codec/types.js';
import { archiveWalFile, EmptyArchiveGate } from '../src/wal/archive.js';
import { walTargetSource } from '../src/wal/target.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { numberOption, option } from './util.js';

const SEGMENTS = numberOption('segments', 24);
const ROUNDS = numberOption('rounds', 3);
const CODEC = (option('codec') ?? 'lz4') as CodecName;
const SCALE = numberOption('scale', 20);
const TEXT_MB = numberOption('text-mb', 100);
const MAX_PARALLEL = 4;
const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');

const dir = scratchDir('bench-age');
execFileSync('age-keygen', ['-o', join(dir.path, 'key')], { stdio: 'ignore' });
const recipient = execFileSync('age-keygen', ['-y', join(dir.path, 'key')], { encoding: 'utf8' }).trim();
const identity = readFileSync(join(dir.path, 'key'), 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
const age = { recipients: [recipient], identities: [identity] };

const load = (): string => `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;

/** Runs both sides of a round, alternating which goes first. */
async function both<T>(round: number, plain: () => Promise<T>, encrypted: () => Promise<T>): Promise<[T, T]> {
  if (round % 2 === 0) {
    const p = await plain();
    return [p, await encrypted()];
  }
  const e = await encrypted();
  return [await plain(), e];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function report(part: string, unit: string, plain: number[], enc: number[]): void {
  const costs = plain.map((p, i) => (1 - enc[i] / p) * 100);
  console.log(
    `${part}: plain ${median(plain).toFixed(1)} ${unit}, encrypted ${median(enc).toFixed(1)} ${unit}, ` +
      `cost ${((1 - median(enc) / median(plain)) * 100).toFixed(1)}% (per round ${costs.map((c) => c.toFixed(1)).join(', ')}; spread ${Math.min(...costs).toFixed(1)}..${Math.max(...costs).toFixed(1)}%)`,
  );
}

console.log(load());
const store = await startStore('s3');
const pg = await startPostgres({ settings: { max_wal_size: '8GB', wal_keep_size: '4GB', checkpoint_timeout: '1h' } });
try {
  const pgbench = (args: string[]) => execFileSync(pg.bin.path('pgbench'), [...args, '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
  pgbench(['-i', '-q', '-s', String(SCALE)]);
  await pg.query(`CREATE TABLE random_text AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS t FROM generate_series(1, ${Math.round((TEXT_MB * 1e6) / 160)}) g`);
  await pg.query('CHECKPOINT');

  // --- archive: the segments written so far, copied out once.
  const segDir = join(dir.path, 'segments');
  mkdirSync(segDir);
  await pg.query('SELECT pg_switch_wal()');
  const [{ current }] = await pg.query<{ current: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS current');
  const names = readdirSync(join(pg.pgdata, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n) && n < current).sort().slice(-SEGMENTS);
  for (const n of names) copyFileSync(join(pg.pgdata, 'pg_wal', n), join(segDir, n));
  console.log(`archive: ${names.length} segments, codec ${CODEC}, ${MAX_PARALLEL} in flight`);
  const pool = new CompressionPool();
  const archiveRun = async (serverName: string, encrypted: boolean): Promise<{ rate: number; cpu: number }> => {
    const resolved = { ...store.resolved(serverName), config: { ...store.objectStoreConfig(serverName), wal: { compression: CODEC === 'none' ? undefined : CODEC, encryption: undefined, maxParallel: MAX_PARALLEL } } };
    const target = await walTargetSource(encrypted ? { ...resolved, age } : resolved, true).open();
    const gate = new EmptyArchiveGate(dir.path);
    const queue = [...names];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: MAX_PARALLEL }, async () => {
        for (let n = queue.shift(); n; n = queue.shift()) await archiveWalFile(target, join(segDir, n), gate, { pool });
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await target.store.close();
    return { rate: names.length / seconds, cpu: (cpu.user + cpu.system) / 1e6 };
  };
  const plainWal: number[] = [];
  const encWal: number[] = [];
  const walCpu = { plain: 0, enc: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const [p, e] = await both(r, () => archiveRun(`wal-plain-${r}`, false), () => archiveRun(`wal-age-${r}`, true));
    plainWal.push(p.rate);
    encWal.push(e.rate);
    walCpu.plain += p.cpu;
    walCpu.enc += e.cpu;
    console.log(`  round ${r + 1}: plain ${p.rate.toFixed(1)} seg/s (${p.cpu.toFixed(1)} CPU s), encrypted ${e.rate.toFixed(1)} seg/s (${e.cpu.toFixed(1)} CPU s)`);
  }
  await pool.close();
  console.log(load());

  // --- backup: PostgreSQL archives to both server folders, so each backup finds its end segment.
  const manifestFor = (serverName: string, encrypted: boolean): string => {
    const docs = parseAllDocuments(store.manifest({ clusterName: serverName, objectStore: { data: { compression: CODEC === 'none' ? 'none' : CODEC, jobs: 2 }, wal: { compression: CODEC } } })).map((d) => d.toJS());
    if (encrypted) {
      for (const d of docs) if (d.kind === 'Cluster') d.metadata.annotations = { 'pgark.io/encryption': 'age' };
      docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'age' }, stringData: { recipients: recipient } });
    }
    const file = join(dir.path, `${serverName}.yaml`);
    writeFileSync(file, docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n'));
    chmodSync(file, 0o644);
    return file;
  };
  const plainManifest = manifestFor('bk-plain', false);
  const encManifest = manifestFor('bk-age', true);
  const archive = (m: string) => `${process.execPath} ${PGARK} wal-archive --no-daemon -f ${m} %p`;
  await pg.query(`ALTER SYSTEM SET archive_mode = 'on'`);
  await pg.query(`ALTER SYSTEM SET archive_command = '${archive(plainManifest)} && ${archive(encManifest)}'`);
  await pg.stop();
  await pg.start();
  const [{ size }] = await pg.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size');
  const mb = Number(size) / 1e6;
  console.log(`backup: database ${mb.toFixed(0)} MB, codec ${CODEC}, jobs 2`);
  const backupRun = (manifest: string): Promise<{ rate: number; cpu: number }> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const args = ['-f', 'CPU=%U+%S', process.execPath, PGARK, 'backup', '-f', manifest, '--immediate-checkpoint', '--no-progress', '--pgdata', pg.pgdata];
      const child = spawn('/usr/bin/time', args, {
        env: { ...process.env, ...pg.env, PGARK_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
        uid: pg.who?.uid,
        gid: pg.who?.gid,
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) return reject(new Error(`pgark backup exited ${code}: ${stderr}`));
        const m = /CPU=([\d.]+)\+([\d.]+)/.exec(stderr);
        resolve({ rate: mb / ((performance.now() - t0) / 1000), cpu: m ? Number(m[1]) + Number(m[2]) : NaN });
      });
    });
  const plainBk: number[] = [];
  const encBk: number[] = [];
  const bkCpu = { plain: 0, enc: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const [p, e] = await both(r, () => backupRun(plainManifest), () => backupRun(encManifest));
    plainBk.push(p.rate);
    encBk.push(e.rate);
    bkCpu.plain += p.cpu;
    bkCpu.enc += e.cpu;
    console.log(`  round ${r + 1}: plain ${p.rate.toFixed(1)} MB/s (${p.cpu.toFixed(1)} CPU s), encrypted ${e.rate.toFixed(1)} MB/s (${e.cpu.toFixed(1)} CPU s)`);
  }
  console.log(load());
  report('archive', 'seg/s', plainWal, encWal);
  console.log(`archive CPU: plain ${walCpu.plain.toFixed(1)} s, encrypted ${walCpu.enc.toFixed(1)} s (+${((walCpu.enc / walCpu.plain - 1) * 100).toFixed(1)}%)`);
  report('backup', 'MB/s', plainBk, encBk);
  console.log(`backup CPU: plain ${bkCpu.plain.toFixed(1)} s, encrypted ${bkCpu.enc.toFixed(1)} s (+${((bkCpu.enc / bkCpu.plain - 1) * 100).toFixed(1)}%)`);
} finally {
  await pg.destroy();
  await store.stop();
  dir.cleanup();
}
