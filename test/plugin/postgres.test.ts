/**
 * PostgreSQL 15 under pgbench, archiving through the CNPG-I plugin: archive_command is the test
 * client standing in for CNPG's `/controller/manager wal-archive %p` (one WAL.Archive call over the
 * socket), the plugin runs as `pgark plugin serve` under PostgreSQL's OS user (as the sidecar runs
 * with the postgres container's uid), and the store is a real s3rver or Azurite. Every archived
 * segment must be in barman-cloud's layout with pg_wal's exact bytes, the real
 * barman-cloud-wal-restore must fetch one byte-identical, and pg_stat_archiver must count no failure.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decompressBuffer } from '../../src/codec/index.js';
import { clientTool } from '../../src/pg/binaries.js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { runPgTool } from '../../src/pg/local-server.js';
import { openObjectStore } from '../../src/storage/open.js';
import { archivedWalFiles } from '../../src/wal/list.js';
import { pluginCluster } from '../harness/cnpg-client.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { runBarman } from '../wal/helpers.js';
import { startPluginProcess, writeStoreManifests, type PluginProcess } from './helpers.js';

const WAL_COMMAND = join(PACKAGE_ROOT, 'dist', 'test', 'harness', 'cnpg-wal-command.js');

async function pgbench(pg: PgServer, args: string[]): Promise<void> {
  const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], { who: pg.who });
  assert.equal(r.code, 0, r.stderr);
}

/** Waits until PostgreSQL has handed every finished segment to archive_command successfully. */
async function drained(pg: PgServer, plugin: PluginProcess): Promise<void> {
  await pg.query('SELECT pg_switch_wal()');
  const status = join(pg.pgdata, 'pg_wal', 'archive_status');
  for (let i = 0; readdirSync(status).some((f) => f.endsWith('.ready')); i++) {
    if (i > 3000) throw new Error(`archiving did not catch up\n${pg.log().slice(-3000)}\n${plugin.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const kind of ['s3', 'azure-connection-string'] as StoreKind[]) {
  describe(`PostgreSQL 15 archiving through the plugin to ${kind}`, () => {
    const dir = scratchDir(`plugin-pg-${kind}`);
    const cleanups: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      dir.cleanup();
    });

    test('every segment lands in barman-cloud\'s layout byte-identical, barman-cloud-wal-restore reads one, no archive failure', async () => {
      const store: TestStore = await startStore(kind);
      cleanups.push(() => store.stop());
      const manifests = writeStoreManifests(dir.path, store, 'store', { configuration: { wal: { compression: 'gzip', maxParallel: 4 } } });
      const cluster = pluginCluster({ name: 'plugpg', pluginName: 'pgark.io', barmanObjectName: 'store' });
      const clusterFile = join(dir.path, 'cluster.json');
      const paramsFile = join(dir.path, 'params.json');
      writeFileSync(clusterFile, JSON.stringify(cluster));
      writeFileSync(paramsFile, JSON.stringify({ barmanObjectName: 'store' }));

      const socketDir = join(dir.path, 'plugins');
      const pg = await startPostgres({ major: 15, noStart: true });
      cleanups.push(() => pg.destroy());
      const plugin = await startPluginProcess({ socketDir, args: ['-f', manifests], who: pg.who });
      cleanups.push(() => plugin.stop());
      pg.configure({
        archive_mode: 'on',
        archive_command: `${process.execPath} ${WAL_COMMAND} archive ${plugin.socketPath} ${clusterFile} ${paramsFile} %p`,
        wal_keep_size: '2GB',
        max_wal_size: '2GB',
        checkpoint_timeout: '30min',
      });
      // A new cluster, as CNPG creates it: the plugin must find the archive empty.
      writeFileSync(join(pg.pgdata, '.check-empty-wal-archive'), '');
      await pg.start();

      await pgbench(pg, ['-i', '-s', '8']);
      await pgbench(pg, ['-c', '2', '-t', '1500', '-n']);
      await drained(pg, plugin);

      const [stats] = await pg.query<{ archived_count: string; failed_count: string }>('SELECT archived_count, failed_count FROM pg_stat_archiver');
      assert.equal(Number(stats.failed_count), 0, `archive failures:\n${pg.log().slice(-2000)}`);

      const raw = await openObjectStore(store.resolved('plugpg'));
      cleanups.push(() => raw.close());
      const stored = new Map<string, string>();
      for await (const wal of archivedWalFiles(raw, 'plugpg')) {
        assert.ok(!stored.has(wal.name), `${wal.name} stored twice`);
        stored.set(wal.name, wal.key);
      }
      const statusDir = join(pg.pgdata, 'pg_wal', 'archive_status');
      const done = readdirSync(statusDir).flatMap((f) => (f.endsWith('.done') ? [f.replace(/\.done$/, '')] : []));
      assert.ok(done.length >= 6, `only ${done.length} segments archived`);
      assert.ok(Number(stats.archived_count) >= done.length);
      for (const name of done) {
        const key = stored.get(name);
        assert.equal(key, `plugpg/wals/${name.slice(0, 16)}/${name}.gz`, `${name} in barman-cloud's layout, gzip`);
        const local = readFileSync(join(pg.pgdata, 'pg_wal', name));
        assert.ok((await decompressBuffer('gzip', await raw.getBuffer(key!))).equals(local), `${key} differs from pg_wal/${name}`);
      }
      // CNPG's marker is gone after the first successful upload, as CNPG's own archiver does.
      assert.ok(!readdirSync(pg.pgdata).includes('.check-empty-wal-archive'));

      const pick = done[Math.floor(done.length / 2)];
      const out = join(dir.path, `${pick}.barman`);
      const b = runBarman('barman-cloud-wal-restore', [...store.barman!.args, store.destinationPath, 'plugpg', pick, out], store.barman!.env);
      assert.equal(b.code, 0, b.stderr);
      assert.ok(readFileSync(out).equals(readFileSync(join(pg.pgdata, 'pg_wal', pick))), 'barman-cloud-wal-restore fetched other bytes');
    });
  });
}
