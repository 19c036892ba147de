/** Pure pieces of the base backup: barman's path rules, backup_manifest text, WAL positions, tar names. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { pgdataFilter, tablespaceFilter } from '../../src/backup/exclusions.js';
import { crc32cManifestHex, renderBackupManifest } from '../../src/pg/backup-manifest.js';
import { tarMemberName } from '../../src/backup/archive-writer.js';
import { baseBackupCommand } from '../../src/backup/base-backup-protocol.js';
import { backupIdFor } from '../../src/backup/claim.js';
import { checkBackupName } from '../../src/backup/commit.js';

describe('PGDATA exclusions (barman rules)', () => {
  const f = pgdataFilter([16385], ['inside_spc']);
  it('keeps the data files and the directories whose contents are excluded', () => {
    for (const p of ['PG_VERSION', 'base/1/1259', 'global/1262', 'pg_wal', 'pg_replslot', 'pg_stat_tmp', 'postgresql.conf']) assert.ok(f.allows(p), p);
  });
  it('drops what barman drops, below excluded directories too', () => {
    for (const p of [
      'pg_wal/000000010000000000000001',
      'pg_wal/archive_status/000000010000000000000001.done',
      'pg_replslot/slot1/state',
      'postmaster.pid',
      'global/pg_control',
      'base/1/pg_internal.init',
      'base/pgsql_tmp/pgsql_tmp123.0',
      'pg_tblspc/16385',
      'inside_spc/PG_15_1/1/2',
      'pgark-wal/daemon.sock',
      'log/postgresql.log',
      // Left by the restore this server started from; the backup appends its own.
      'backup_manifest',
    ]) assert.ok(!f.allows(p), p);
  });
  it('a tablespace keeps only this major version directory', () => {
    const t = tablespaceFilter(15);
    assert.ok(t.allows('PG_15_202209061'));
    assert.ok(t.allows('PG_15_202209061/5/16390'));
    assert.ok(!t.allows('PG_14_202107181'));
    assert.ok(!t.allows('lost+found'));
  });
});

describe('backup_manifest', () => {
  const text = renderBackupManifest(
    [{ path: 'base/1/1259', size: 8192, mtime: new Date('2024-01-02T03:04:05Z'), crc32c: 0x12345678 }],
    [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }],
  ).toString();
  it('is JSON with PostgreSQL keys and little-endian CRC-32C hex', () => {
    const m = JSON.parse(text);
    assert.equal(m['PostgreSQL-Backup-Manifest-Version'], 1);
    assert.deepEqual(m.Files[0], { Path: 'base/1/1259', Size: 8192, 'Last-Modified': '2024-01-02 03:04:05 GMT', 'Checksum-Algorithm': 'CRC32C', Checksum: '78563412' });
    assert.deepEqual(m['WAL-Ranges'], [{ Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/2000100' }]);
    assert.equal(crc32cManifestHex(0xdeadbeef), 'efbeadde');
  });
  it('ends with a Manifest-Checksum over everything before its line', () => {
    assert.ok(text.endsWith('}\n'));
    const cut = text.lastIndexOf('\n', text.length - 2) + 1;
    const expected = createHash('sha256').update(text.slice(0, cut)).digest('hex');
    assert.equal(JSON.parse(text)['Manifest-Checksum'], expected);
  });
});

describe('positions and names', () => {
  it('names tar members as barman does', () => {
    assert.equal(tarMemberName(''), '.');
    assert.equal(tarMemberName('PG_VERSION'), './PG_VERSION');
    assert.equal(tarMemberName('base/1/1259'), 'base/1/1259');
  });
  it('makes backup ids and refuses names that look like ids or shortcuts', () => {
    assert.equal(backupIdFor(new Date('2024-01-02T03:04:05.678Z')), '20240102T030405');
    assert.throws(() => checkBackupName('20240102T030405'), /looks like a backup id/);
    assert.throws(() => checkBackupName('latest'), /reserved/);
    assert.throws(() => checkBackupName(''), /empty/);
    checkBackupName('nightly-1');
  });
  it('writes BASE_BACKUP for each protocol generation', () => {
    assert.equal(baseBackupCommand(14, "it's", true), "BASE_BACKUP LABEL 'it''s' FAST NOWAIT");
    assert.equal(baseBackupCommand(16, 'x', false), "BASE_BACKUP (LABEL 'x', CHECKPOINT 'spread', WAIT false, MANIFEST 'no', TABLESPACE_MAP false)");
  });
});
