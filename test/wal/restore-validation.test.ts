/**
 * `pgark wal-restore` hands PostgreSQL only what can be the file its name says (file:// and
 * s3rver, through the CLI as restore_command runs it, via the daemon with prefetch and in-process):
 * a damaged object exits 255, which makes PostgreSQL abort the recovery instead of taking the
 * object for the end of the archive (exit 1) and promoting on partial data.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { walKey } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { restoreSpoolDir, walRuntime } from '../../src/wal/runtime.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from './helpers.js';

const seg = (n: number) => `0000000100000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const SERVER = 'damaged';

for (const kind of ['file', 's3'] as const) {
  describe(`wal-restore refuses damaged WAL objects on ${kind}`, () => {
    let store: TestStore;
    let client: ObjectStore;
    const dir = scratchDir(`walval-${kind}`);
    const daemons: string[] = [];
    let cfg: string;

    const put = (name: string, body: Buffer) => client.put(walKey(SERVER, name), body);

    before(async () => {
      store = await startStore(kind);
      client = await openObjectStore(store.resolved(SERVER));
      cfg = join(dir.path, 'cluster.yaml');
      writeFileSync(cfg, store.manifest({ clusterName: 'pg', serverName: SERVER, objectStore: { wal: { maxParallel: 2 } } }));
      const whole = craftSegment(seg(2));
      await put(`${seg(1)}.gz`, gzipSync(craftSegment(seg(1))));
      await put(seg(2), whole.subarray(0, 5 * 1024 * 1024 + 17));
      await put(seg(3), Buffer.concat([craftSegment(seg(3)), randomBytes(8192)]));
      // Segment 5's bytes under segment 4's name.
      await put(seg(4), craftSegment(seg(5)));
      // A timeline 2 page under a timeline 1 name.
      await put(seg(6), craftSegment(`00000002${seg(6).slice(8)}`));
      await put(`${seg(7)}.gz`, Buffer.concat([gzipSync(craftSegment(seg(7))).subarray(0, 20), randomBytes(4096)]));
      await put(seg(8), Buffer.alloc(30));
      await put(seg(10), craftSegment(seg(10)));
      await put(seg(11), craftSegment(seg(12)));
      await put('00000002.history', Buffer.from('1\t0/ZZZ\tgarbage\n'));
      await put('00000003.history', Buffer.from('1\t0/3000000\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n'));
      await put('00000004.history', Buffer.from('5\t0/3000000\tfrom a later timeline\n'));
    });
    after(async () => {
      for (const d of daemons) await stopWalDaemon(d);
      await client.close();
      await store.stop();
      dir.cleanup();
    });

    function pgdata(label: string) {
      const d = fakePgdata(join(dir.path, label));
      daemons.push(d.pgdata);
      return d;
    }

    const damaged: [string, RegExp][] = [
      [seg(2), /it is 5242897 bytes long, but its page header gives a segment size of 16777216 bytes/],
      [seg(3), /it is 16785408 bytes long/],
      [seg(4), /its first page is for LSN 0\/5000000, so it is 000000010000000000000005, not 0\/4000000/],
      [seg(6), /its first page is on timeline 2, later than timeline 1 of its name/],
      [seg(7), /gzip data cannot be decoded/],
      [seg(8), /its first page has no WAL long page header \(30 bytes\)/],
      ['00000002.history', /is not "timeline<TAB>LSN<TAB>reason"/],
      ['00000004.history', /it lists timeline 5 as an ancestor of timeline 4/],
    ];

    for (const mode of ['daemon', 'in-process'] as const) {
      test(`${mode}: each damaged object exits 255 naming the object and what is wrong, and leaves nothing at %p`, async () => {
        const d = pgdata(`each-${mode}`);
        const extra = mode === 'in-process' ? ['--no-daemon'] : [];
        for (const [name, why] of damaged) {
          const r = await runPgark(['wal-restore', '-f', cfg, ...extra, name, 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata });
          assert.equal(r.code, 255, `${name}: ${r.stderr}`);
          assert.match(r.stderr, new RegExp(`recovery stopped: WAL object \\S*/${name.replace('.', '\\.')}\\S* in .* is damaged: `), name);
          assert.match(r.stderr, why, name);
          assert.deepEqual(readdirSync(d.walDir).filter((f) => f !== 'archive_status'), [], `${name}: nothing written to pg_wal`);
        }
        for (const name of [seg(1), '00000003.history']) {
          const ok = await runPgark(['wal-restore', '-f', cfg, ...extra, name, 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata });
          assert.equal(ok.code, 0, `${name}: ${ok.stderr}`);
        }
        const missing = await runPgark(['wal-restore', '-f', cfg, ...extra, seg(9), 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata });
        assert.equal(missing.code, 1, `a missing segment stays "not in the archive": ${missing.stderr}`);
      });
    }

    test('a segment under the wrong name fetched ahead never reaches the spool, and asking for it exits 255', async () => {
      const d = pgdata('prefetch');
      const first = await runPgark(['wal-restore', '-f', cfg, seg(10), 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata });
      assert.equal(first.code, 0, first.stderr);
      // wal.maxParallel 2: the daemon fetches segment 11 ahead; the request below waits for that fetch.
      const second = await runPgark(['wal-restore', '-f', cfg, seg(11), 'pg_wal/RECOVERYXLOG'], { cwd: d.pgdata });
      assert.equal(second.code, 255, second.stderr);
      assert.match(second.stderr, /00000001000000000000000B in .* is damaged: its first page is for LSN 0\/C000000/);
      const spool = restoreSpoolDir(walRuntime(d.pgdata), { files: [cfg] });
      assert.ok(!existsSync(join(spool, seg(11))), 'the damaged segment is not in the spool');
    });
  });
}
