/**
 * PostgreSQL 15 with pgark as archive_command under pgbench load, on real stores: every segment
 * PostgreSQL archived is in barman-cloud's layout and decompresses to the exact bytes of pg_wal
 * (wal_keep_size keeps them for the comparison), also while pgark clients and the daemon are
 * killed with SIGKILL again and again; then a copy of a base backup taken before the load, started
 * with recovery.signal and pgark as restore_command, replays the archive and sees the data.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, startRecovery, type PgServer } from '../harness/postgres.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { walProcessPids } from '../harness/wal-processes.js';
import { runPgTool } from '../../src/pg/local-server.js';
import { clientTool } from '../../src/pg/binaries.js';
import { openObjectStore } from '../../src/storage/open.js';
import { decompressBuffer, splitCodecSuffix } from '../../src/codec/index.js';
import { PGARK, PGARK_LAUNCHER, stopWalDaemon } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** pids of node processes of pgark (WAL clients or daemon) whose command line mentions `needle`. */
const pgarkPids = (needle: string) => walProcessPids(needle, PGARK_LAUNCHER);

async function waitArchived(pg: PgServer, timeoutMs = 180_000): Promise<void> {
  await pg.query('SELECT pg_switch_wal()');
  await pg.query('CHECKPOINT');
  const status = join(pg.pgdata, 'pg_wal', 'archive_status');
  const deadline = Date.now() + timeoutMs;
  while (readdirSync(status).some((f) => f.endsWith('.ready'))) {
    if (Date.now() > deadline) throw new Error(`archiving did not catch up: ${readdirSync(status).filter((f) => f.endsWith('.ready')).length} .ready left\n${pg.log().slice(-3000)}`);
    await sleep(200);
  }
}

async function pgbench(pg: PgServer, args: string[]): Promise<void> {
  const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], { who: pg.who });
  assert.equal(r.code, 0, r.stderr);
}

/** Every .done segment of pg_wal is stored once, in the layout, with the exact bytes; returns how many. */
/** Checks every .done WAL file against the store; returns how many files the store holds and how many of them were compared. */
async function verifyArchive(pg: PgServer, store: TestStore, serverName: string): Promise<{ stored: number; compared: number }> {
  const client = await openObjectStore(store.resolved(serverName));
  try {
    const stored = new Map<string, string>();
    for await (const e of client.list(`${serverName}/wals/`)) {
      if (!e.object) continue;
      const { base } = splitCodecSuffix(e.object.key.slice(e.object.key.lastIndexOf('/') + 1));
      assert.ok(!stored.has(base), `${base} stored twice`);
      stored.set(base, e.object.key);
    }
    const done = readdirSync(join(pg.pgdata, 'pg_wal', 'archive_status'))
      .filter((f) => f.endsWith('.done'))
      .map((f) => f.slice(0, -5))
      .sort();
    assert.ok(done.length > 5, `only ${done.length} segments archived`);
    for (const name of done) {
      const key = stored.get(name);
      assert.ok(key, `${name} archived by PostgreSQL but not in the store`);
      const dir = name.endsWith('.history') ? '' : `${name.slice(0, 16)}/`;
      assert.equal(splitCodecSuffix(key).base, `${serverName}/wals/${dir}${name}`);
      const local = readFileSync(join(pg.pgdata, 'pg_wal', name));
      const remote = await decompressBuffer(splitCodecSuffix(key).codec, await client.getBuffer(key));
      assert.ok(remote.equals(local), `${key} differs from pg_wal/${name}`);
    }
    const segs = done.filter((n) => n.length === 24);
    const nums = segs.map((n) => parseInt(n.slice(8, 16), 16) * 256 + parseInt(n.slice(16), 16));
    for (let i = 1; i < nums.length; i++) assert.equal(nums[i], nums[i - 1] + 1, `gap after ${segs[i - 1]}`);
    return { stored: stored.size, compared: done.length };
  } finally {
    await client.close();
  }
}

interface Scenario {
  kind: StoreKind;
  compression?: string;
  chaos: boolean;
  recover: boolean;
}

const scenarios: Scenario[] = [
  { kind: 's3', compression: 'zstd', chaos: true, recover: true },
  { kind: 'azure-connection-string', compression: 'gzip', chaos: false, recover: false },
];

for (const sc of scenarios) {
  describe(`PostgreSQL 15 archiving through pgark to ${sc.kind}`, () => {
    const dir = scratchDir(`walpg-${sc.kind}`);
    const cleanups: Array<() => Promise<void>> = [];
    let store: TestStore | undefined;
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      await store?.stop();
      dir.cleanup();
    });

    test(`every segment is archived byte-identical${sc.chaos ? ' while pgark processes are killed -9' : ''}${sc.recover ? ', and a restored copy replays the archive' : ''}`, async (t) => {
      const t0 = Date.now();
      store = await startStore(sc.kind);
      const manifest = join(dir.path, 'cluster.yaml');
      writeFileSync(manifest, store.manifest({ clusterName: 'walpg', objectStore: { wal: { compression: sc.compression, maxParallel: 4 } } }));
      // The launcher PostgreSQL runs in production: sh, which hands over to Node unless the daemon already stored the segment.
      const archiveCommand = `PGARK_WAL_DAEMON_IDLE_SECONDS=10 PGARK_NODE=${process.execPath} ${PGARK_LAUNCHER} wal-archive -f ${manifest} %p`;
      const pg = await startPostgres({
        major: 15,
        settings: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '4GB', max_wal_size: '4GB', checkpoint_timeout: '30min' },
      });
      cleanups.push(async () => {
        await pg.destroy();
        await stopWalDaemon(pg.pgdata);
      });
      const marker = join(pg.pgdata, '.check-empty-wal-archive');
      writeFileSync(marker, '');

      const backupDir = join(dir.path, 'base');
      if (sc.recover) {
        const r = await runPgTool(clientTool('pg_basebackup'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-D', backupDir, '-X', 'none', '-c', 'fast'], { who: pg.who });
        assert.equal(r.code, 0, r.stderr);
      }

      let killed = 0;
      let stopChaos = false;
      const chaos = sc.chaos
        ? (async () => {
            while (!stopChaos) {
              await sleep(300 + Math.floor(Math.random() * 400));
              for (const pid of [...pgarkPids(pg.pgdata), ...pgarkPids(manifest)]) {
                try {
                  process.kill(pid, 'SIGKILL');
                  killed++;
                } catch {
                  // already gone
                }
              }
            }
          })()
        : Promise.resolve();
      await pgbench(pg, ['-i', '-s', '12', '-q']);
      await pgbench(pg, ['-c', '4', '-T', '8', '-n']);
      await pg.query('CREATE TABLE after_load AS SELECT 42 AS answer');
      stopChaos = true;
      await chaos;
      await waitArchived(pg);
      if (sc.chaos) assert.ok(killed > 0, 'the chaos loop killed pgark processes');
      const { stored, compared } = await verifyArchive(pg, store, 'walpg');
      t.diagnostic(`${compared} WAL files verified byte-identical, ${killed} pgark processes killed, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.ok(!existsSync(marker), 'empty-archive marker removed after the first success');
      // Segments stored ahead still go through archive_command, so PostgreSQL counts every one it
      // marked .done (a .done that pgark made itself would be missing from the count). The count
      // can be higher: with archive_command processes killed -9, PostgreSQL 15 counted more
      // successes than there are files (23 for 17 stored, 18 for 16), which the exact check of
      // archive-status.test.ts, without kills, does not see.
      const archived = Number((await pg.query<{ archived_count: string }>('SELECT archived_count FROM pg_stat_archiver'))[0].archived_count);
      assert.ok(archived >= compared, `pg_stat_archiver.archived_count ${archived} counts fewer than the ${compared} WAL files PostgreSQL marked .done (${stored} stored)`);

      if (!sc.recover) return;
      const expected = await pg.query<{ n: string }>('SELECT sum(abalance)::text AS n FROM pgbench_accounts');
      const restoreCommand = `PGARK_WAL_DAEMON_IDLE_SECONDS=10 ${process.execPath} ${PGARK} wal-restore -f ${manifest} %f %p`;
      const recovering = await startRecovery(pg, backupDir, dir.path, { restore_command: restoreCommand });
      cleanups.push(async () => {
        await recovering.stop();
        await stopWalDaemon(backupDir);
      });
      await recovering.promoted();
      const q = recovering.query;
      const logFile = recovering.logFile;
      assert.equal((await q('SELECT answer FROM after_load'))[0].answer, 42);
      assert.equal((await q('SELECT sum(abalance)::text AS n FROM pgbench_accounts'))[0].n, expected[0].n);
      t.diagnostic(`recovery done at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.match(readFileSync(logFile, 'utf8'), /restored log file "0000000100000000000000\w\w" from archive/);
    });
  });
}
