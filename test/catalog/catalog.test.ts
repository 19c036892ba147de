process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupInfoToJson, parseBackupInfo } from '../../src/catalog/backup-info.js';
import {
  DELETION_MARKER,
  deleteBackup,
  deleteBackupObjects,
  findBackup,
  listBackups,
  markDeletionInProgress,
} from '../../src/catalog/catalog.js';
import { backupInfoKey, basePrefix, backupPrefix } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import { startStore, type StoreKind } from '../harness/stores.js';
import { NotFoundError, UserError } from '../../src/util/errors.js';
import { allKeys, DAY, writeBackup, type SyntheticBackup } from './synthetic.js';
import { barmanCloud } from './barman-cli.js';

const SERVER = 'pg';
const T0 = Date.UTC(2024, 0, 1);

const BACKUPS: SyntheticBackup[] = [
  { id: '20240101T000000', beginSeg: 2, endSeg: 2, endTime: new Date(T0), name: 'nightly' },
  { id: '20240102T000000', beginSeg: 4, endSeg: 5, endTime: new Date(T0 + DAY), status: 'FAILED', name: 'dup' },
  { id: '20240103T000000', beginSeg: 7, endSeg: 7, endTime: new Date(T0 + 2 * DAY), name: 'dup', tablespaceOid: 16385 },
  { id: '20240104T000000', beginSeg: 9, endSeg: 9, endTime: new Date(T0 + 3 * DAY) },
  { id: '20240105T000000', beginSeg: 11, endSeg: 11, endTime: new Date(T0 + 4 * DAY), status: 'FAILED' },
];

for (const kind of ['file', 's3', 'azure-connection-string'] as StoreKind[]) {
  test(`catalog on ${kind}: list, find, unreadable and incomplete backups, resumable delete`, async () => {
    const ts = await startStore(kind);
    const store = await openObjectStore(ts.resolved(SERVER));
    try {
      for (const b of BACKUPS) await writeBackup(store, SERVER, b);
      // An interrupted upload (tars, no backup.info) and a garbled backup.info.
      await store.put(`${backupPrefix(SERVER, '20240106T000000')}data.tar`, Buffer.alloc(10));
      await store.put(`${backupPrefix(SERVER, '20240107T000000')}data.tar`, Buffer.alloc(10));
      await store.put(backupInfoKey(SERVER, '20240107T000000'), Buffer.from('status=DONE\nversion=sixteen\n'));
      // A keep annotation.
      await store.put(`${backupPrefix(SERVER, '20240101T000000')}annotations/keep`, Buffer.from('standalone'));

      const catalog = await listBackups(store, SERVER);
      assert.deepEqual(catalog.backups.map((b) => b.backup_id), BACKUPS.map((b) => b.id));
      assert.deepEqual(catalog.incomplete, ['20240106T000000']);
      assert.equal(catalog.unreadable.length, 1);
      assert.equal(catalog.unreadable[0].backupId, '20240107T000000');
      assert.match(catalog.unreadable[0].error, /field version: not an integer/);
      assert.equal(catalog.keep.get('20240101T000000'), 'standalone');
      assert.equal(catalog.objects.get('20240103T000000')!.length, 3);

      assert.equal(findBackup(catalog, 'latest').backup_id, '20240104T000000');
      assert.equal(findBackup(catalog, 'last').backup_id, '20240104T000000');
      assert.equal(findBackup(catalog, 'first').backup_id, '20240101T000000');
      assert.equal(findBackup(catalog, 'oldest').backup_id, '20240101T000000');
      assert.equal(findBackup(catalog, 'last-failed').backup_id, '20240105T000000');
      assert.equal(findBackup(catalog, 'nightly').backup_id, '20240101T000000');
      assert.equal(findBackup(catalog, '20240102T000000').status, 'FAILED');
      assert.throws(() => findBackup(catalog, 'dup'), (e: unknown) => e instanceof UserError && /ambiguous: it names 20240102T000000, 20240103T000000/.test(e.message));
      assert.throws(() => findBackup(catalog, '20991231T000000'), NotFoundError);
      assert.throws(() => findBackup(catalog, 'nope'), /unknown backup "nope" for server "pg"/);

      // A kept backup is refused.
      await assert.rejects(deleteBackup(store, SERVER, '20240101T000000'), /keep annotation/);

      // Interrupted deletion: marked, then only part of the data deleted.
      const victim = '20240103T000000';
      await markDeletionInProgress(store, SERVER, victim);
      await store.delete([`${backupPrefix(SERVER, victim)}16385.tar`]);
      const half = await listBackups(store, SERVER);
      const marked = half.backups.find((b) => b.backup_id === victim)!;
      assert.equal(marked.status, 'FAILED', 'a half-deleted backup never shows as DONE');
      assert.ok(marked.error!.startsWith(DELETION_MARKER));
      assert.equal(marked.backup_name, 'dup', 'the rest of backup.info is preserved');
      // Marking twice keeps the first marker.
      const firstError = marked.error;
      await markDeletionInProgress(store, SERVER, victim);
      assert.equal(parseBackupInfo((await store.getBuffer(backupInfoKey(SERVER, victim))).toString(), victim).error, firstError);
      // A second run finishes it.
      const result = await deleteBackup(store, SERVER, victim);
      assert.equal(result.objectsDeleted, 2);
      assert.deepEqual(await allKeys(store, backupPrefix(SERVER, victim)), []);

      // An unreadable backup and an interrupted upload are deletable too.
      await deleteBackup(store, SERVER, '20240107T000000');
      await deleteBackupObjects(store, SERVER, '20240106T000000');
      const after = await listBackups(store, SERVER);
      assert.deepEqual(after.backups.map((b) => b.backup_id), ['20240101T000000', '20240102T000000', '20240104T000000', '20240105T000000']);
      assert.deepEqual(after.unreadable, []);
      assert.deepEqual(after.incomplete, []);
      await assert.rejects(deleteBackup(store, SERVER, victim), NotFoundError);
      assert.ok((await allKeys(store, basePrefix(SERVER))).every((k) => !k.includes(victim)));
    } finally {
      await store.close();
      await ts.stop();
    }
  });
}

test('barman-cloud-backup-list 3.4 and our listing agree; barman reads a half-deleted backup as FAILED', async () => {
  const ts = await startStore('s3');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    for (const b of BACKUPS) await writeBackup(store, SERVER, b);
    await markDeletionInProgress(store, SERVER, '20240104T000000');
    await store.delete([`${backupPrefix(SERVER, '20240104T000000')}data.tar`]);

    const r = barmanCloud(ts, 'barman-cloud-backup-list', ['--format', 'json'], SERVER);
    assert.equal(r.status, 0, r.stderr);
    const theirs = JSON.parse(r.stdout).backups_list as Record<string, unknown>[];
    const ours = (await listBackups(store, SERVER)).backups.map(backupInfoToJson);
    // barman 3.4 predates the *_iso keys (3.12.1); everything else must be identical.
    const without = (j: Record<string, unknown>) => {
      const { begin_time_iso: _b, end_time_iso: _e, ...rest } = j;
      return rest;
    };
    assert.deepEqual(JSON.parse(JSON.stringify(ours.map(without))), theirs);
    const half = theirs.find((b) => b.backup_id === '20240104T000000')!;
    assert.equal(half.status, 'FAILED');
    assert.match(String(half.error), /^pgark: deletion in progress/);
  } finally {
    await store.close();
    await ts.stop();
  }
});
