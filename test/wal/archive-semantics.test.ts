/**
 * wal-archive / wal-restore semantics on real stores (file:// and s3rver), driven through the CLI
 * as PostgreSQL runs it: layout, idempotence and conflicts, .history protection, the
 * "Expected empty archive" check, and what restore refuses to serve.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { checkEmptyArchive, ArchiveNotEmptyError } from '../../src/wal/empty-check.js';
import { summarizeWalArchive } from '../../src/wal/list.js';
import { fileIdentity, restoreSpoolDir, walRuntime } from '../../src/wal/runtime.js';
import { craftSegment, fakePgdata, PGARK_LAUNCHER, runPgark, stopWalDaemon } from './helpers.js';

const SEG1 = '000000010000000000000001';
const SEG2 = '000000010000000000000002';
const SEG3 = '000000010000000000000003';

function expectOk(r: { code: number | null; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) out.push(e.object.key);
  return out;
}

for (const kind of ['file', 's3'] as const) {
  describe(`WAL archive semantics on ${kind}`, () => {
    let store: TestStore;
    let client: ObjectStore;
    const dir = scratchDir(`walsem-${kind}`);
    const daemons: string[] = [];

    function manifest(name: string, opts: { serverName: string; compression?: string; annotations?: Record<string, string> }): string {
      const file = join(dir.path, `${name}.yaml`);
      let yaml = store.manifest({
        clusterName: 'pg',
        serverName: opts.serverName,
        objectStore: opts.compression ? { wal: { compression: opts.compression, maxParallel: 2 } } : { wal: { maxParallel: 2 } },
      });
      if (opts.annotations) {
        const ann = Object.entries(opts.annotations).map(([k, v]) => `    ${k}: ${v}`).join('\n');
        yaml = yaml.replace(/metadata:\n  name: pg\n/, `metadata:\n  name: pg\n  annotations:\n${ann}\n`);
      }
      writeFileSync(file, yaml);
      return file;
    }

    function pgdata(label: string) {
      const d = fakePgdata(join(dir.path, label));
      daemons.push(d.pgdata);
      return d;
    }

    before(async () => {
      store = await startStore(kind);
      client = await openObjectStore(store.resolved('unused'));
    });
    after(async () => {
      for (const d of daemons) await stopWalDaemon(d);
      await client.close();
      await store.stop();
      dir.cleanup();
    });

    test('segments stored ahead stay .ready for PostgreSQL, and their markers let the sh launcher answer without Node', async () => {
      const cfg = manifest('ahead', { serverName: 'ahead' });
      const d = pgdata('ahead');
      const segs = [SEG1, SEG2, SEG3].map((n) => d.addReady(n, craftSegment(n)));
      const spool = walRuntime(d.pgdata).archiveSpool;
      expectOk(await runPgark(['wal-archive', '-f', cfg, segs[0]], { cwd: d.pgdata }));
      // The marker is written before the .inflight file goes (archive-service.ts): wait for both.
      const settled = (n: string) => existsSync(join(spool, n)) && !existsSync(join(spool, `${n}.inflight`));
      for (let i = 0; i < 200 && !(settled(SEG2) && settled(SEG3)); i++) await new Promise((res) => setTimeout(res, 50));
      const status = (n: string, ext: string) => existsSync(join(d.walDir, 'archive_status', `${n}.${ext}`));
      for (const n of [SEG1, SEG2, SEG3]) assert.ok(status(n, 'ready') && !status(n, 'done'), `${n}: archive_status is left to PostgreSQL`);
      for (const n of [SEG2, SEG3]) {
        assert.equal(readFileSync(join(spool, n), 'utf8').trim(), fileIdentity(join(d.walDir, n)));
        assert.ok(!existsSync(join(spool, `${n}.inflight`)), 'no .inflight once stored');
      }
      const launched = spawnSync(PGARK_LAUNCHER, ['wal-archive', '-f', cfg, segs[2]], { cwd: d.pgdata, env: { ...process.env, PGARK_NODE: '/bin/false' } });
      assert.equal(launched.status, 0, 'answered by sh from the daemon marker');
      assert.deepEqual(await keys(client, 'ahead/wals/'), [SEG1, SEG2, SEG3].map((n) => `ahead/wals/0000000100000000/${n}`));
    });

    test('segments land in <server>/wals/<TLI+LOG>/<name>.gz, look-ahead included, decompress to the same bytes, and restore prefetches through the spool', async () => {
      const cfg = manifest('layout', { serverName: 'layout', compression: 'gzip' });
      const d = pgdata('layout');
      const segs = [SEG1, SEG2, SEG3].map((n) => ({ n, data: craftSegment(n), p: '' }));
      for (const s of segs) s.p = d.addReady(s.n, s.data);
      const r = await runPgark(['wal-archive', '-f', cfg, segs[0].p], { cwd: d.pgdata });
      assert.equal(r.code, 0, r.stderr);
      // The daemon pushes the other .ready segments ahead; the next calls are answered from the spool.
      for (const s of segs.slice(1)) expectOk(await runPgark(['wal-archive', '-f', cfg, s.p], { cwd: d.pgdata }));
      const stored = await keys(client, 'layout/wals/');
      assert.deepEqual(stored, segs.map((s) => `layout/wals/0000000100000000/${s.n}.gz`));
      for (const s of segs) assert.ok(gunzipSync(await client.getBuffer(`layout/wals/0000000100000000/${s.n}.gz`)).equals(s.data));

      // Restore: the daemon prefetches the next maxParallel-1 segments into the spool; the next call takes it from there.
      const rd = pgdata('layout-restore');
      const first = await runPgark(['wal-restore', '-f', cfg, SEG1, 'pg_wal/RECOVERYXLOG'], { cwd: rd.pgdata });
      assert.equal(first.code, 0, first.stderr);
      assert.ok(readFileSync(join(rd.walDir, 'RECOVERYXLOG')).equals(segs[0].data));
      const spooled = join(restoreSpoolDir(walRuntime(rd.pgdata), { files: [cfg] }), SEG2);
      for (let i = 0; i < 200 && !existsSync(spooled); i++) await new Promise((res) => setTimeout(res, 50));
      assert.ok(readFileSync(spooled).equals(segs[1].data), 'next segment prefetched, complete, under its own name');
      const second = await runPgark(['wal-restore', '-f', cfg, SEG2, 'pg_wal/RECOVERYXLOG'], { cwd: rd.pgdata });
      assert.equal(second.code, 0, second.stderr);
      assert.ok(!existsSync(spooled), 'served from the spool');
      assert.ok(readFileSync(join(rd.walDir, 'RECOVERYXLOG')).equals(segs[1].data));
    });

    test('same name, same bytes: success without rewriting, whatever the compression now; different bytes: error with both sizes and checksums', async () => {
      const gz = manifest('idem-gz', { serverName: 'idem', compression: 'gzip' });
      const plain = manifest('idem-none', { serverName: 'idem' });
      const data = craftSegment(SEG1);
      const a = pgdata('idem-a');
      expectOk(await runPgark(['wal-archive', '--no-daemon', '-f', gz, a.addReady(SEG1, data)], { cwd: a.pgdata }));
      const before = await keys(client, 'idem/wals/');
      const b = pgdata('idem-b');
      const same = await runPgark(['wal-archive', '-f', plain, b.addReady(SEG1, data)], { cwd: b.pgdata });
      assert.equal(same.code, 0, same.stderr);
      assert.deepEqual(await keys(client, 'idem/wals/'), before, 'no second object under another suffix');

      const other = craftSegment(SEG1);
      const c = pgdata('idem-c');
      const conflict = await runPgark(['wal-archive', '-f', plain, c.addReady(SEG1, other)], { cwd: c.pgdata });
      assert.equal(conflict.code, 1);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      assert.match(conflict.stderr, /already archived as idem\/wals\/0000000100000000\/000000010000000000000001\.gz with different content/);
      assert.ok(conflict.stderr.includes(sha(data)) && conflict.stderr.includes(sha(other)), conflict.stderr);
      assert.match(conflict.stderr, /16777216 bytes/);
      assert.equal(conflict.stderr.trim().split('\n').length, 1, 'one line on stderr');
      assert.ok(gunzipSync(await client.getBuffer('idem/wals/0000000100000000/000000010000000000000001.gz')).equals(data), 'archived bytes untouched');
    });

    test('when the daemon cannot start, wal-archive and wal-restore work in-process', async () => {
      const cfg = manifest('nodaemon', { serverName: 'nodaemon' });
      const d = pgdata('nodaemon');
      const data = craftSegment(SEG1);
      // A runtime directory that cannot be created: no socket, no spool, no daemon.
      const env = { PGARK_WAL_RUNTIME_DIR: join(cfg, 'not-a-directory') };
      const r = await runPgark(['wal-archive', '-f', cfg, d.addReady(SEG1, data)], { cwd: d.pgdata, env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!existsSync(join(d.pgdata, 'pgark-wal')));
      const back = await runPgark(['wal-restore', '-f', cfg, SEG1, 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata, env });
      assert.equal(back.code, 0, back.stderr);
      assert.ok(readFileSync(join(d.walDir, 'RECOVERYXLOG')).equals(data));
    });

    test('.history files go to the top of wals/ and are never overwritten with different content', async () => {
      const cfg = manifest('hist', { serverName: 'hist' });
      const a = pgdata('hist-a');
      const history = Buffer.from('1\t0/3000000\tno recovery target specified\n');
      expectOk(await runPgark(['wal-archive', '-f', cfg, a.addReady('00000002.history', history)], { cwd: a.pgdata }));
      assert.deepEqual(await client.getBuffer('hist/wals/00000002.history'), history);
      const b = pgdata('hist-b');
      const r = await runPgark(['wal-archive', '-f', cfg, b.addReady('00000002.history', Buffer.from('1\t0/4000000\tother\n'))], { cwd: b.pgdata });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /timeline history file 00000002\.history is already archived/);
      assert.deepEqual(await client.getBuffer('hist/wals/00000002.history'), history);
    });

    test('expected empty archive: fires while the marker exists, lists what it found, honours the skip annotation, marker removed after success', async () => {
      const cfg = manifest('empty', { serverName: 'empty' });
      const skip = manifest('empty-skip', { serverName: 'empty', annotations: { 'cnpg.io/skipEmptyWalArchiveCheck': 'enabled' } });
      const old = pgdata('empty-old');
      expectOk(await runPgark(['wal-archive', '-f', cfg, old.addReady(SEG1, craftSegment(SEG1, 111n))], { cwd: old.pgdata }));

      const fresh = pgdata('empty-new');
      writeFileSync(join(fresh.pgdata, '.check-empty-wal-archive'), '');
      const p = fresh.addReady(SEG2, craftSegment(SEG2, 222n));
      const refused = await runPgark(['wal-archive', '-f', cfg, p], { cwd: fresh.pgdata });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Expected empty archive/);
      assert.match(refused.stderr, /empty\/wals\/0000000100000000\/000000010000000000000001/);
      assert.match(refused.stderr, /timelines 1/);
      assert.match(refused.stderr, /system 111/);
      assert.match(refused.stderr, /serverName|skipEmptyWalArchiveCheck/);
      assert.ok(existsSync(join(fresh.pgdata, '.check-empty-wal-archive')), 'marker kept after a refusal');
      assert.equal((await keys(client, 'empty/wals/')).length, 1, 'nothing written');

      const check = await checkEmptyArchive(client, 'empty').then(() => undefined, (e) => e);
      assert.ok(check instanceof ArchiveNotEmptyError);
      await checkEmptyArchive(client, 'empty', { timeline: 2 });
      await checkEmptyArchive(client, 'nobody-here');

      await stopWalDaemon(fresh.pgdata);
      const ok = await runPgark(['wal-archive', '-f', skip, p], { cwd: fresh.pgdata });
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(!existsSync(join(fresh.pgdata, '.check-empty-wal-archive')), 'marker removed after the first success');
    });

    test('without the marker, only WAL of another system is refused; an empty archive passes and the marker is removed', async () => {
      const cfg = manifest('sysid', { serverName: 'sysid' });
      const first = pgdata('sysid-first');
      writeFileSync(join(first.pgdata, '.check-empty-wal-archive'), '');
      expectOk(await runPgark(['wal-archive', '-f', cfg, first.addReady(SEG1, craftSegment(SEG1, 333n))], { cwd: first.pgdata }));
      assert.ok(!existsSync(join(first.pgdata, '.check-empty-wal-archive')));
      const same = pgdata('sysid-same');
      expectOk(await runPgark(['wal-archive', '-f', cfg, same.addReady(SEG2, craftSegment(SEG2, 333n))], { cwd: same.pgdata }));
      const foreign = pgdata('sysid-foreign');
      const r = await runPgark(['wal-archive', '-f', cfg, foreign.addReady(SEG3, craftSegment(SEG3, 444n))], { cwd: foreign.pgdata });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Expected empty archive.*archived WAL belongs to system 333, this cluster is system 444/);
    });

    test('restore: exact names only (never .partial or .backup for a segment), missing = exit 1, bad name = exit 3, wal-list reports gaps', async () => {
      const cfg = manifest('rest', { serverName: 'rest', compression: 'gzip' });
      const a = pgdata('rest-a');
      const seg = craftSegment(SEG1);
      expectOk(await runPgark(['wal-archive', '-f', cfg, a.addReady(SEG1, seg)], { cwd: a.pgdata }));
      await client.put(`rest/wals/0000000100000000/${SEG2}.partial`, craftSegment(SEG2));
      await client.put(`rest/wals/0000000100000000/${SEG3}.00000028.backup`, Buffer.from('START WAL LOCATION: 0/3000028\n'));
      await client.put(`rest/wals/0000000100000000/000000010000000000000005`, craftSegment('000000010000000000000005'));
      const r = pgdata('rest-r');
      const got = await runPgark(['wal-restore', '-f', cfg, SEG1, 'pg_wal/RECOVERYXLOG'], { cwd: r.pgdata });
      assert.equal(got.code, 0, got.stderr);
      assert.ok(readFileSync(join(r.walDir, 'RECOVERYXLOG')).equals(seg));
      for (const name of [SEG2, SEG3, '000000010000000000000004']) {
        const miss = await runPgark(['wal-restore', '-f', cfg, name, 'pg_wal/RECOVERYXLOG'], { cwd: r.pgdata });
        assert.equal(miss.code, 1, `${name}: ${miss.stderr}`);
        assert.match(miss.stderr, /not found/);
      }
      const partial = await runPgark(['wal-restore', '-f', cfg, `${SEG2}.partial`, 'pg_wal/x'], { cwd: r.pgdata });
      assert.equal(partial.code, 0, `a .partial asked for by its own name is served: ${partial.stderr}`);
      const bad = await runPgark(['wal-restore', '-f', cfg, 'pg_control', 'pg_wal/x'], { cwd: r.pgdata });
      assert.equal(bad.code, 3);

      // Recovery reads another cluster's archive: externalClusters[NAME], serverName defaulting to NAME.
      const recovery = join(dir.path, 'recovery.yaml');
      writeFileSync(recovery, store.manifest({ clusterName: 'pg-new', serverName: 'pg-new', spec: { externalClusters: [{ name: 'rest', barmanObjectStore: store.objectStoreConfig() }] } }));
      const r2 = pgdata('rest-source');
      const viaSource = await runPgark(['wal-restore', '-f', recovery, '--source', 'rest', SEG1, 'pg_wal/RECOVERYXLOG'], { cwd: r2.pgdata });
      assert.equal(viaSource.code, 0, viaSource.stderr);
      assert.ok(readFileSync(join(r2.walDir, 'RECOVERYXLOG')).equals(seg));
      const unknown = await runPgark(['wal-restore', '-f', recovery, '--source', 'nope', SEG1, 'pg_wal/RECOVERYXLOG'], { cwd: r2.pgdata });
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no externalClusters entry "nope".*known external clusters: rest/);

      const summary = await summarizeWalArchive(client, 'rest');
      assert.deepEqual(summary.timelines.map((t) => [t.firstSegment, t.lastSegment, t.segments, t.gaps.map((g) => [g.from, g.to])]), [
        [SEG1, '000000010000000000000005', 2, [[SEG2, '000000010000000000000004']]],
      ]);
      assert.deepEqual(summary.partialFiles, [`${SEG2}.partial`]);
      assert.deepEqual(summary.backupLabels, [`${SEG3}.00000028.backup`]);
      const list = await runPgark(['wal-list', '-f', cfg, '--json']);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(JSON.parse(list.stdout).timelines[0].gaps[0].missing, 3);
    });
  });
}
