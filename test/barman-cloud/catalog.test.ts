/**
 * The catalog drop-ins (barman-cloud-backup-list, -show, -delete, -keep) against Debian's
 * barman-cloud 3.4 on the same bytes, on s3rver and Azurite: the same JSON for every backup of a
 * multi-timeline catalog (FAILED ones included), the same backups and WAL chosen by every
 * retention policy form, keep annotations read and written by both, and barman's exit codes.
 */
process.env.TZ = 'UTC';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { backupInfoKey, walsPrefix } from '../../src/catalog/layout.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupList } from '../../src/commands/barman-cloud/backup-list.js';
import { backupShow } from '../../src/commands/barman-cloud/backup-show.js';
import { backupKeep } from '../../src/commands/barman-cloud/backup-keep.js';
import { backupDelete } from '../../src/commands/barman-cloud/backup-delete.js';
import { barmanExitCode } from '../../src/commands/barman-cloud/shared.js';
import { populate, scenario } from '../catalog/scenarios.js';
import { allKeys } from '../catalog/synthetic.js';
import { barman, capture } from './io.js';

const SERVER = 'pg';

/** Keys a --dry-run (barman's or pgark's) says it would delete, relative to the store root. */
function dryRunKeys(output: string, root: string): string[] {
  const keys: string[] = [];
  for (const m of output.matchAll(/Skipping deletion of objects \[(.*)\] due to --dry-run option/g)) {
    for (const q of m[1].matchAll(/'([^']*)'/g)) keys.push(root && q[1].startsWith(`${root}/`) ? q[1].slice(root.length + 1) : q[1]);
  }
  return keys;
}

function chosen(keys: string[]): { backups: string[]; wal: string[] } {
  return {
    backups: keys.filter((k) => k.endsWith('/backup.info')).map((k) => k.split('/').at(-2)!).sort(),
    wal: keys.filter((k) => k.startsWith(walsPrefix(SERVER))).sort(),
  };
}

/** The exit code the drop-in gives for what `fn` throws (0 when it returns). */
async function exitOf(fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (err) {
    return barmanExitCode(err);
  }
}

/** Fields barman 3.4's to_json() lacks: *_iso arrived in barman 3.12.1 and CNPG prefers them. */
const NEWER_THAN_34 = ['begin_time_iso', 'end_time_iso'];

for (const kind of ['s3', 'azure-connection-string'] as StoreKind[]) {
  describe(`barman-cloud catalog drop-ins and barman-cloud 3.4 (${kind})`, () => {
    let ts: TestStore;
    let store: ObjectStore;
    const now = Date.now();
    const catalog = scenario(now);
    let root: string;

    before(async () => {
      ts = await startStore(kind);
      store = await openObjectStore(ts.resolved(SERVER));
      await populate(store, catalog);
      const path = new URL(ts.destinationPath).pathname.replace(/^\//, '');
      // Azure's emulator URL is /<account>/<container>/<path>; barman prints keys with <path> only.
      root = kind === 's3' ? path : path.split('/').slice(2).join('/');
    });
    after(async () => {
      await store?.close();
      await ts?.stop();
    });

    it('backup-list --format json: the same entries, key for key and type for type, FAILED included', async () => {
      const theirs = barman(ts, 'barman-cloud-backup-list', ['--format', 'json'], [SERVER]);
      assert.equal(theirs.status, 0, theirs.stderr);
      const io = capture();
      await backupList({ target: ts.resolved(SERVER), format: 'json' }, io.log, io.out);
      const ours = JSON.parse(io.stdout()).backups_list as Record<string, unknown>[];
      const ref = JSON.parse(theirs.stdout).backups_list as Record<string, unknown>[];
      assert.equal(ours.length, catalog.backups.length);
      assert.deepEqual(ours.map((b) => b.backup_id), ref.map((b) => b.backup_id));
      assert.ok(ours.some((b) => b.status === 'FAILED'));
      for (let i = 0; i < ours.length; i++) {
        const mine = { ...ours[i] };
        for (const k of NEWER_THAN_34) {
          assert.match(String(mine[k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/, `${k} is RFC 3339 with an offset`);
          delete mine[k];
        }
        assert.deepEqual(mine, ref[i], `entry ${i}`);
        assert.equal(typeof ours[i].systemid, 'string');
        assert.equal(typeof ours[i].timeline, 'number');
      }
      // Only the JSON document is on stdout, as json.dumps prints it.
      assert.equal(io.stdout().trim(), io.stdout().trim().split('\n')[0]);
    });

    it('backup-list --format console lists DONE backups with their keep status, as barman does', async () => {
      const theirs = barman(ts, 'barman-cloud-backup-list', ['--format', 'console'], [SERVER]);
      assert.equal(theirs.status, 0, theirs.stderr);
      const io = capture();
      await backupList({ target: ts.resolved(SERVER), format: 'console' }, io.log, io.out);
      assert.equal(io.stdout(), theirs.stdout);
      assert.match(io.stdout(), /KEEP:STANDALONE/);
    });

    it('backup-show --format json by id: {"cloud": ...} equal to barman\'s; unknown id exits 1, unknown name 4', async () => {
      for (const b of [catalog.backups[1], catalog.backups[3]]) {
        const theirs = barman(ts, 'barman-cloud-backup-show', ['--format', 'json'], [SERVER, b.id]);
        assert.equal(theirs.status, 0, theirs.stderr);
        const io = capture();
        await backupShow({ target: ts.resolved(SERVER), backupId: b.id, format: 'json' }, io.log, io.out);
        const ours = JSON.parse(io.stdout());
        assert.deepEqual(Object.keys(ours), ['cloud']);
        for (const k of NEWER_THAN_34) delete ours.cloud[k];
        assert.deepEqual(ours, JSON.parse(theirs.stdout));
      }
      const io = capture();
      const missingId = '19990101T000000';
      assert.equal(await exitOf(() => backupShow({ target: ts.resolved(SERVER), backupId: missingId, format: 'json' }, io.log, io.out)), 1);
      assert.equal(barman(ts, 'barman-cloud-backup-show', ['--format', 'json'], [SERVER, missingId]).status, 1);
      assert.equal(await exitOf(() => backupShow({ target: ts.resolved(SERVER), backupId: 'no-such-name', format: 'json' }, io.log, io.out)), 4);
      assert.equal(io.stdout(), '', 'nothing on stdout when the backup is not found');
    });

    it('backup-show --format console has barman\'s layout', async () => {
      const b = catalog.backups[3];
      const theirs = barman(ts, 'barman-cloud-backup-show', ['--format', 'console'], [SERVER, b.id]);
      assert.equal(theirs.status, 0, theirs.stderr);
      const io = capture();
      await backupShow({ target: ts.resolved(SERVER), backupId: b.id, format: 'console' }, io.log, io.out);
      // barman 3.4 adds WAL and catalog sections it computes from its local xlog database; the common head must match.
      const head = io.stdout().split('\n').slice(0, 16).join('\n');
      assert.ok(theirs.stdout.startsWith(head), `ours:\n${io.stdout()}\ntheirs:\n${theirs.stdout}`);
      assert.match(head, /Tablespaces:\n {4}ts16385 +: \/ts\/16385 \(oid: 16385\)/);
    });

    for (const policy of ['RECOVERY WINDOW OF 30 DAYS', 'recovery window of 2 weeks', 'RECOVERY WINDOW OF 3 MONTHS', 'RECOVERY WINDOW OF 95 DAYS', 'REDUNDANCY 1', 'REDUNDANCY 3', 'redundancy 6']) {
      it(`backup-delete -r "${policy}" --dry-run chooses the backups and WAL barman chooses, and deletes nothing`, async () => {
        const before = await allKeys(store, `${SERVER}/`);
        const theirs = barman(ts, 'barman-cloud-backup-delete', ['--retention-policy', policy, '--dry-run'], [SERVER]);
        assert.equal(theirs.status, 0, theirs.stderr);
        const io = capture();
        await backupDelete({ target: ts.resolved(SERVER), retentionPolicy: policy, dryRun: true }, io.log, io.out);
        const want = chosen(dryRunKeys(theirs.stdout, root));
        const got = chosen(dryRunKeys(io.stdout(), ''));
        assert.deepEqual(got.backups, want.backups, 'backups');
        assert.deepEqual(got.wal, want.wal, 'WAL');
        assert.deepEqual(await allKeys(store, `${SERVER}/`), before, 'a dry run deletes nothing');
        if (policy === 'REDUNDANCY 1') assert.ok(want.backups.length >= 4 && want.wal.length > 0, 'the case exercises deletion');
      });
    }

    it('keep annotations: written by either tool, read by the other; only DONE backups can be kept', async () => {
      const [a, failed, , b] = catalog.backups;
      const target = ts.resolved(SERVER);
      const status = async (id: string) => {
        const io = capture();
        await backupKeep({ target, backupId: id, action: { kind: 'status' } }, io.log, io.out);
        return io.stdout();
      };
      const io = capture();
      await backupKeep({ target, backupId: a.id, action: { kind: 'target', target: 'full' } }, io.log, io.out);
      assert.equal(barman(ts, 'barman-cloud-backup-keep', ['--status'], [SERVER, a.id]).stdout, 'Keep: full\n');
      const set = barman(ts, 'barman-cloud-backup-keep', ['--target', 'standalone'], [SERVER, b.id]);
      assert.equal(set.status, 0, set.stderr);
      assert.equal(await status(b.id), 'Keep: standalone\n');
      assert.equal((await listBackups(store, SERVER)).keep.get(b.id), 'standalone');
      // A kept backup is refused by -b, by both.
      assert.equal(await exitOf(() => backupDelete({ target, backupId: a.id, dryRun: false }, io.log, io.out)), 1);
      assert.equal(barman(ts, 'barman-cloud-backup-delete', ['-b', a.id], [SERVER]).status, 1);
      await backupKeep({ target, backupId: b.id, action: { kind: 'release' } }, io.log, io.out);
      assert.equal(barman(ts, 'barman-cloud-backup-keep', ['--status'], [SERVER, b.id]).stdout, 'Keep: nokeep\n');
      if (kind === 's3') {
        const released = barman(ts, 'barman-cloud-backup-keep', ['--release'], [SERVER, a.id]);
        assert.equal(released.status, 0, released.stderr);
      } else {
        // barman 3.4 deletes through Azure's blob batch API, which Azurite answers with 400: pgark releases it here.
        await backupKeep({ target, backupId: a.id, action: { kind: 'release' } }, io.log, io.out);
      }
      assert.equal(await status(a.id), 'Keep: nokeep\n');
      assert.equal(await exitOf(() => backupKeep({ target, backupId: failed.id, action: { kind: 'target', target: 'full' } }, io.log, io.out)), 1);
      assert.equal(barman(ts, 'barman-cloud-backup-keep', ['--target', 'full'], [SERVER, failed.id]).status, 1);
    });

    it('backup-delete refuses while a backup.info is unreadable (exit 1, nothing deleted), as barman does', async () => {
      const bad = '20000101T000000';
      await store.put(backupInfoKey(SERVER, bad), Buffer.from('this is not a backup.info\n'));
      try {
        const before = await allKeys(store, `${SERVER}/`);
        const io = capture();
        assert.equal(await exitOf(() => backupDelete({ target: ts.resolved(SERVER), retentionPolicy: 'REDUNDANCY 1', dryRun: false }, io.log, io.out)), 1);
        assert.equal(await exitOf(() => backupDelete({ target: ts.resolved(SERVER), backupId: catalog.backups[0].id, dryRun: false }, io.log, io.out)), 1);
        assert.equal(barman(ts, 'barman-cloud-backup-delete', ['-r', 'REDUNDANCY 1'], [SERVER]).status, 1);
        assert.deepEqual(await allKeys(store, `${SERVER}/`), before);
        // list skips it with a warning, as barman does, and still exits 0.
        const list = capture();
        await backupList({ target: ts.resolved(SERVER), format: 'json' }, list.log, list.out);
        assert.ok(!JSON.parse(list.stdout()).backups_list.some((b: { backup_id: string }) => b.backup_id === bad));
        assert.match(list.stderr(), new RegExp(`WARNING: .*${bad}`));
      } finally {
        await store.delete([backupInfoKey(SERVER, bad)]);
      }
    });

    it('an invalid policy exits 3; -r "REDUNDANCY 2" then deletes what barman would, and barman agrees afterwards', async () => {
      const io = capture();
      assert.equal(await exitOf(() => backupDelete({ target: ts.resolved(SERVER), retentionPolicy: 'KEEP 3 BACKUPS', dryRun: false }, io.log, io.out)), 3);
      assert.equal(barman(ts, 'barman-cloud-backup-delete', ['-r', 'KEEP 3 BACKUPS'], [SERVER]).status, 3);
      const plan = chosen(dryRunKeys(barman(ts, 'barman-cloud-backup-delete', ['-r', 'REDUNDANCY 2', '--dry-run'], [SERVER]).stdout, root));
      await backupDelete({ target: ts.resolved(SERVER), retentionPolicy: 'REDUNDANCY 2', dryRun: false, batchSize: 2 }, io.log, io.out);
      const left = await allKeys(store, `${SERVER}/`);
      for (const id of plan.backups) assert.ok(!left.some((k) => k.includes(`/base/${id}/`)), `${id} deleted`);
      for (const k of plan.wal) assert.ok(!left.includes(k), `${k} deleted`);
      const again = barman(ts, 'barman-cloud-backup-delete', ['-r', 'REDUNDANCY 2', '--dry-run'], [SERVER]);
      assert.equal(again.status, 0, again.stderr);
      assert.deepEqual(dryRunKeys(again.stdout, root), [], 'barman finds nothing more to delete');
    });
  });
}
