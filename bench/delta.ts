/**
 * Delta-restore benchmark (issue 17): what `pgark restore --delta` transfers and how long it takes
 * next to a full restore, on one PostgreSQL 15 database of --tables equal tables (--mb in all, hex
 * text that compresses about 2:1) backed up to s3rver. For each --codecs entry: a backup, a full
 * restore of it into directory A; one table rewritten (1/--tables of the data) and a second backup;
 * then a full restore of that backup into an empty directory B and a delta restore of it over A.
 * Bytes transferred are counted at the store (a loopback TCP proxy in front of s3rver counts what
 * s3rver sends), so they include HTTP overhead and the member index; times are wall seconds of
 * the `pgark restore` process.
 *
 *   node dist/bench/delta.js [--mb 1024] [--tables 50] [--codecs zstd,gzip]
 */
import { loadavg } from 'node:os';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy } from '../test/harness/proxy.js';
import { startStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { backupOrigin, pgark, recoveryManifest, startOrigin } from '../test/recovery/helpers.js';
import { waitArchiverIdle } from './database.js';
import { numberOption, option } from './util.js';

const MB = numberOption('mb', 1024);
const TABLES = numberOption('tables', 50);
const CODECS = (option('codecs') ?? 'zstd,gzip').split(',');
const ROW_BYTES = 232;

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const store = await startStore('s3');
  const origin = await startOrigin(store, { clusterName: 'bench', major: 15 });
  const work = scratchDir('bench-delta');
  try {
    const rows = Math.round((MB * 1e6) / TABLES / ROW_BYTES);
    const fill = (t: number, salt: string) =>
      `INSERT INTO t${t} SELECT g, md5('${salt}' || g) || md5('a${salt}' || g) || md5('b${salt}' || g) || md5('c${salt}' || g) || md5('d${salt}' || g) || md5('e${salt}' || g) FROM generate_series(1, ${rows}) g`;
    for (let t = 0; t < TABLES; t++) await origin.pg.query(`CREATE TABLE t${t} (id int, payload text); ${fill(t, String(t))}`);
    await origin.pg.query('VACUUM (FREEZE, ANALYZE)');
    await origin.pg.query('CHECKPOINT');
    // Loading wrote about as much WAL as data: archived before the first backup, which waits for its end segment.
    await waitArchiverIdle(origin.pg);
    const [{ size }] = await origin.pg.query<{ size: string }>('SELECT sum(pg_database_size(oid))::bigint AS size FROM pg_database');
    process.stdout.write(`database: ${mib(Number(size))} in ${TABLES} tables; load average ${load()}\n`);

    const proxy = await startProxy(store.s3rver!.port);
    const manifest = join(work.path, 'recovery.yaml');
    writeFileSync(manifest, recoveryManifest(store, { name: 'bench-delta', sourceName: 'bench', noBackup: true }).replaceAll(store.endpointURL!, `http://127.0.0.1:${proxy.port}`));
    const restore = async (dir: string, extra: string[]) => {
      const before = proxy.bytesFromTarget;
      const t0 = process.hrtime.bigint();
      const r = await pgark(['restore', '-f', manifest, '--pgdata', dir, '--jobs', '2', '--json', ...extra]);
      if (r.code !== 0) throw new Error(`pgark restore ${extra.join(' ')} failed: ${r.stderr}`);
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, bytes: proxy.bytesFromTarget - before, json: JSON.parse(r.stdout) };
    };

    for (const [i, codec] of CODECS.entries()) {
      const a = join(work.path, `a-${codec}`);
      const b = join(work.path, `b-${codec}`);
      await backupOrigin(origin, ['--compression', codec]);
      await restore(a, []);
      const changed = i % TABLES;
      await origin.pg.query(`TRUNCATE t${changed}; ${fill(changed, `changed${codec}`)}`);
      await origin.pg.query('CHECKPOINT');
      await waitArchiverIdle(origin.pg);
      await backupOrigin(origin, ['--compression', codec]);
      const full = await restore(b, []);
      const delta = await restore(a, ['--delta']);
      const d = delta.json.download.delta;
      const line =
        `${codec}: full ${mib(full.bytes)} in ${full.seconds.toFixed(1)} s; delta ${mib(delta.bytes)} in ${delta.seconds.toFixed(1)} s ` +
        `= ${((delta.bytes / full.bytes) * 100).toFixed(1)}% of the bytes, ${((delta.seconds / full.seconds) * 100).toFixed(0)}% of the time ` +
        `(${d.kept} files kept, ${d.rewritten} written, ${mib(d.bytesWritten)} written, ${d.rangedReads} ranged GETs${d.streamed.length ? `; ${d.streamed.join('; ')}` : ''}); load average ${load()}`;
      process.stdout.write(`${line}\n`);
      rmSync(b, { recursive: true, force: true });
      rmSync(a, { recursive: true, force: true });
    }
    await proxy.close();
  } finally {
    await origin.pg.destroy();
    await store.stop();
    work.cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
