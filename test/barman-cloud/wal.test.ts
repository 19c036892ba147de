/**
 * pgark's barman-cloud WAL drop-ins (bin/barman-cloud/) against real parts: s3rver and Azurite,
 * Debian's barman-cloud 3.4, and PostgreSQL 15 whose archive_command and restore_command name the
 * drop-ins by bare name through PATH and `sh -c`, shell-quoted as CloudNativePG 1.30 writes its
 * bootstrap restore_command (contract §2.3.2). Checks: WAL archived under pgbench is byte-identical
 * in barman's layout and a second server recovers from it; each tool reads what the other wrote;
 * the push is idempotent; the sh launcher answers from the daemon's markers without Node, and
 * the daemon is per store and credentials.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, startRecovery, type PgServer } from '../harness/postgres.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { runPgTool } from '../../src/pg/local-server.js';
import { clientTool } from '../../src/pg/binaries.js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { openObjectStore } from '../../src/storage/open.js';
import { decompressBuffer, splitCodecSuffix } from '../../src/codec/index.js';
import { daemonInstance } from '../../src/commands/barman-cloud/common.js';
import { BARMAN_CREDENTIAL_ENV } from '../../src/config/barman-env.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { craftSegment, fakePgdata, runBarman } from '../wal/helpers.js';
import { dropinEnv, runDropin, shellJoin, stopDropinDaemons } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pgbench(pg: PgServer, args: string[]): Promise<void> {
  const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], { who: pg.who });
  assert.equal(r.code, 0, r.stderr);
}

async function waitArchived(pg: PgServer, timeoutMs = 240_000): Promise<void> {
  await pg.query('SELECT pg_switch_wal()');
  await pg.query('CHECKPOINT');
  const status = join(pg.pgdata, 'pg_wal', 'archive_status');
  const deadline = Date.now() + timeoutMs;
  while (readdirSync(status).some((f) => f.endsWith('.ready'))) {
    if (Date.now() > deadline) throw new Error(`archiving did not catch up\n${pg.log().slice(-3000)}`);
    await sleep(200);
  }
}

const KINDS: StoreKind[] = ['s3', 'azure-connection-string'];

for (const kind of KINDS) {
  describe(`barman-cloud WAL drop-ins on ${kind}`, () => {
    let store: TestStore;
    let env: Record<string, string>;
    let prov: string[];
    const dir = scratchDir(`bcwal-${kind}`);
    const pgdatas: string[] = [];
    const cleanups: Array<() => Promise<void>> = [];
    before(async () => {
      store = await startStore(kind);
      env = store.barman!.env;
      // CNPG's <prov> block plus --endpoint-url for S3 (store.barman.args holds both).
      prov = store.barman!.args;
    });
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      for (const p of pgdatas) await stopDropinDaemons(p);
      await store.stop();
      dir.cleanup();
    });

    test('pgark pushes (gzip) -> barman 3.4 restores byte-identical; barman pushes (bzip2, .history) -> pgark restores byte-identical', async () => {
      const seg = '000000010000000A000000FE';
      const d = fakePgdata(join(dir.path, 'interop'));
      pgdatas.push(d.pgdata);
      const data = craftSegment(seg);
      const a = runDropin('barman-cloud-wal-archive', ['--gzip', ...prov, store.destinationPath, 'from-pgark', d.addReady(seg, data)], env, d.pgdata);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(a.stdout, '');
      const out = join(dir.path, 'by-barman');
      const b = runBarman('/usr/bin/barman-cloud-wal-restore', [...prov, store.destinationPath, 'from-pgark', seg, out], env);
      assert.equal(b.code, 0, b.stderr);
      assert.ok(readFileSync(out).equals(data), 'barman restored other bytes');

      const seg2 = '0000000200000003000000FF';
      const history = Buffer.from('1\t3/FF000000\tno recovery target specified\n');
      const src = fakePgdata(join(dir.path, 'barman-src'));
      const data2 = craftSegment(seg2);
      for (const [name, bytes] of [[seg2, data2], ['00000002.history', history]] as const) {
        src.addReady(name, bytes);
        const r = runBarman('/usr/bin/barman-cloud-wal-archive', ['--bzip2', ...prov, store.destinationPath, 'from-barman', join(src.walDir, name)], env);
        assert.equal(r.code, 0, r.stderr);
      }
      const dst = fakePgdata(join(dir.path, 'pgark-dst'));
      pgdatas.push(dst.pgdata);
      for (const [name, bytes] of [[seg2, data2], ['00000002.history', history]] as const) {
        const r = runDropin('barman-cloud-wal-restore', [...prov, store.destinationPath, 'from-barman', name, 'pg_wal/RECOVERYXLOG'], env, dst.pgdata);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(readFileSync(join(dst.walDir, 'RECOVERYXLOG')).equals(bytes), `pgark restored other bytes for ${name}`);
      }
      // Not in the archive: exit 1, the code CNPG reads as "not found" (end of WAL for a prefetch).
      const missing = runDropin('barman-cloud-wal-restore', [...prov, store.destinationPath, 'from-barman', '000000020000000400000000', 'pg_wal/RECOVERYXLOG'], env, dst.pgdata);
      assert.equal(missing.code, 1, missing.stderr);
    });

    test('the push is content-checked: the same bytes again succeed, other bytes under the name fail with exit 1', async () => {
      const seg = '000000010000000000000010';
      const d = fakePgdata(join(dir.path, 'idem'));
      pgdatas.push(d.pgdata);
      const args = ['--lz4', ...prov, store.destinationPath, 'idem'];
      const first = runDropin('barman-cloud-wal-archive', [...args, d.addReady(seg, craftSegment(seg))], env, d.pgdata);
      assert.equal(first.code, 0, first.stderr);
      // In this process (PGARK_WAL_NO_DAEMON), so the daemon's memory of the upload plays no part.
      const again = runDropin('barman-cloud-wal-archive', [...args, `pg_wal/${seg}`], { ...env, PGARK_WAL_NO_DAEMON: '1' }, d.pgdata);
      assert.equal(again.code, 0, again.stderr);
      writeFileSync(join(d.walDir, seg), craftSegment(seg, 7300000000000000002n));
      const other = runDropin('barman-cloud-wal-archive', [...args, `pg_wal/${seg}`], { ...env, PGARK_WAL_NO_DAEMON: '1' }, d.pgdata);
      assert.equal(other.code, 1, other.stderr);
      assert.match(other.stderr, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] ERROR: .*already archived .* with different content/m);
    });

    test('the sh launcher answers a segment the daemon stored ahead without Node; another store or key gets its own daemon', async () => {
      const d = fakePgdata(join(dir.path, 'fast'));
      pgdatas.push(d.pgdata);
      const segs = ['000000010000000000000020', '000000010000000000000021', '000000010000000000000022'];
      for (const s of segs) d.addReady(s, craftSegment(s));
      const argv = ['--gzip', ...prov, store.destinationPath, 'fast'];
      const first = runDropin('barman-cloud-wal-archive', [...argv, `pg_wal/${segs[0]}`], env, d.pgdata);
      assert.equal(first.code, 0, first.stderr);
      // The daemon's directory is the one both bin/pgark and the TypeScript side name.
      const instance = daemonInstance(argv, { ...process.env, ...env });
      const rt = walRuntime(d.pgdata, instance);
      assert.ok(existsSync(rt.lockFile), `no daemon under ${rt.dir}: ${readdirSync(join(d.pgdata, 'pgark-wal')).join(', ')}`);
      // Look-ahead stores the other .ready segments and leaves markers.
      const deadline = Date.now() + 60_000;
      while (!segs.slice(1).every((s) => existsSync(join(rt.archiveSpool, s)))) {
        assert.ok(Date.now() < deadline, 'look-ahead did not store the .ready segments');
        await sleep(100);
      }
      // A node that cannot run: only the sh fast path can succeed.
      const noNode = { ...env, PGARK_NODE: '/bin/false' };
      for (const s of segs.slice(1)) {
        const r = runDropin('barman-cloud-wal-archive', [...argv, `pg_wal/${s}`], noNode, d.pgdata);
        assert.equal(r.code, 0, `sh did not answer ${s}: ${r.stderr}`);
      }
      // Other credentials are another daemon key: the markers do not answer for them.
      d.addReady('000000010000000000000023', craftSegment('000000010000000000000023'));
      const otherKey = { ...noNode, AWS_SESSION_TOKEN: 'another-session', AZURE_CLIENT_ID: 'another-client' };
      const miss = runDropin('barman-cloud-wal-archive', [...argv, 'pg_wal/000000010000000000000022'], otherKey, d.pgdata);
      assert.notEqual(miss.code, 0, 'a marker of one credential set answered for another');
      // bin/pgark hashes the same variables as the TypeScript side.
      const launcher = readFileSync(join(PACKAGE_ROOT, 'bin', 'pgark'), 'utf8');
      const listed = /for var in ([\s\S]*?); do/.exec(launcher)![1].replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean);
      assert.deepEqual(listed, [...BARMAN_CREDENTIAL_ENV]);
    });

    test('PostgreSQL 15: archive_command and restore_command run the drop-ins by name through sh; a second server recovers from the archive', async (t) => {
      const t0 = Date.now();
      const server = 'pg15';
      const archiveArgs = ['barman-cloud-wal-archive', '--gzip', ...prov, store.destinationPath, server];
      // The server's environment is pg_ctl's: PATH with the drop-ins and the store's variables.
      Object.assign(process.env, dropinEnv(env));
      const pg = await startPostgres({
        major: 15,
        settings: { archive_mode: 'on', archive_command: `${shellJoin(archiveArgs)} %p`, wal_keep_size: '2GB', max_wal_size: '2GB', checkpoint_timeout: '30min' },
      });
      cleanups.push(async () => {
        await pg.destroy();
        await stopDropinDaemons(pg.pgdata);
      });
      const check = runDropin('barman-cloud-check-wal-archive', [...prov, store.destinationPath, server], env);
      assert.equal(check.code, 0, check.stderr);
      const backupDir = join(dir.path, 'base');
      const bb = await runPgTool(clientTool('pg_basebackup'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-D', backupDir, '-X', 'none', '-c', 'fast'], { who: pg.who });
      assert.equal(bb.code, 0, bb.stderr);
      await pgbench(pg, ['-i', '-s', '6', '-q']);
      await pgbench(pg, ['-c', '2', '-T', '5', '-n']);
      await pg.query('CREATE TABLE after_load AS SELECT 42 AS answer');
      await waitArchived(pg);
      // Every .done WAL file is in barman's layout with pg_wal's bytes.
      const client = await openObjectStore(store.resolved(server));
      const done = readdirSync(join(pg.pgdata, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.done')).map((f) => f.slice(0, -5));
      try {
        for (const name of done) {
          const key = `${server}/wals/${name.endsWith('.history') ? '' : `${name.slice(0, 16)}/`}${name}.gz`;
          const stored = await decompressBuffer(splitCodecSuffix(key).codec, await client.getBuffer(key));
          assert.ok(stored.equals(readFileSync(join(pg.pgdata, 'pg_wal', name))), `${key} differs from pg_wal/${name}`);
        }
      } finally {
        await client.close();
      }
      assert.ok(done.length >= 3, `only ${done.length} WAL files archived`);
      const notEmpty = runDropin('barman-cloud-check-wal-archive', [...prov, store.destinationPath, server], env);
      assert.equal(notEmpty.code, 1);
      assert.match(notEmpty.stderr, new RegExp(`ERROR: WAL archive check failed for server ${server}: Expected empty archive\\n`));

      const expected = await pg.query<{ n: string }>('SELECT sum(abalance)::text AS n FROM pgbench_accounts');
      // CNPG <= 1.30's bootstrap recovery: restore_command = shell-quoted barman-cloud-wal-restore [--endpoint-url U] <dest> <server> <prov> %f %p
      const endpoint = prov.includes('--endpoint-url') ? ['--endpoint-url', prov[prov.indexOf('--endpoint-url') + 1]] : [];
      const provider = prov.filter((a, i) => a !== '--endpoint-url' && prov[i - 1] !== '--endpoint-url');
      const restoreCommand = `${shellJoin(['barman-cloud-wal-restore', ...endpoint, store.destinationPath, server, ...provider])} %f %p`;
      const recovering = await startRecovery(pg, backupDir, dir.path, { recovery_target_action: 'promote', restore_command: restoreCommand });
      cleanups.push(async () => {
        await recovering.stop();
        await stopDropinDaemons(backupDir);
      });
      await recovering.promoted();
      const q = recovering.query;
      const logFile = recovering.logFile;
      assert.equal((await q('SELECT answer FROM after_load'))[0].answer, 42);
      assert.equal((await q('SELECT sum(abalance)::text AS n FROM pgbench_accounts'))[0].n, expected[0].n);
      assert.match(readFileSync(logFile, 'utf8'), /restored log file "0000000100000000000000\w\w" from archive/);
      t.diagnostic(`${done.length} WAL files archived and replayed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
  });
}
