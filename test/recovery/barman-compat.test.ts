/**
 * Backups and WAL written by barman-cloud 3.4 (barman-cloud-backup with no compression, gzip,
 * bzip2 and snappy; barman-cloud-wal-archive --gzip) restore exactly as pgark's own: each backup
 * recovered to its own consistent point holds exactly the rows committed before it. A gzip
 * backup cut into parts by --max-archive-size (data.tar.gz, data_0001.tar.gz, ...) restores too.
 *
 * Debian's barman-cloud-backup 3.4 cannot write --snappy on this Python (its python-snappy fails
 * with "PY_SSIZE_T_CLEAN macro must be defined"), so the snappy backup is barman's uncompressed
 * backup with data.tar re-encoded in the snappy framing format barman uses (data.tar.snappy).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { backupPrefix } from '../../src/catalog/layout.js';
import { compressStream } from '../../src/codec/index.js';
import { shellQuote } from '../../src/recovery/pgark-command.js';
import { openObjectStore } from '../../src/storage/open.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { run } from '../backup/helpers.js';
import { archiveCurrentWal, batches, insertBatch, recoveryManifest, restore, type Recovered } from './helpers.js';

const CODECS = [
  ['none', []],
  ['gzip', ['--gzip']],
  ['bzip2', ['--bzip2']],
  ['snappy', []],
  // barman closes a part once its compressed bytes pass 1 MiB: a fresh cluster's few MB make several.
  ['gzip-parts', ['--gzip', '--max-archive-size', '1MB']],
] as const;
const SERVER = 'barman-origin';

let store: TestStore;
let pg: PgServer;
const ids = new Map<string, string>();
const recovered: Recovered[] = [];

before(async () => {
  store = await startStore('s3');
  const barman = store.barman!;
  const env = Object.entries(barman.env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ');
  pg = await startPostgres({
    settings: {
      archive_mode: 'on',
      archive_command: `${env} barman-cloud-wal-archive --gzip ${barman.args.join(' ')} ${store.destinationPath} ${SERVER} %p`,
    },
  });
  await pg.query('CREATE TABLE rows (batch int, id serial primary key, at timestamptz default clock_timestamp())');
  // Batch k is committed after backup k-1 and before backup k.
  for (const [i, [codec, flags]] of CODECS.entries()) {
    await insertBatch(pg, i + 1);
    const b = await run('barman-cloud-backup', [...barman.args, ...flags, '--name', `b-${codec}`, '--immediate-checkpoint', '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', store.destinationPath, SERVER], barman.env);
    assert.equal(b.code, 0, b.stderr);
  }
  await insertBatch(pg, CODECS.length + 1);
  await archiveCurrentWal(pg);
  await snappyEncode(`b-snappy`);
  const list = await run('barman-cloud-backup-list', [...barman.args, '--format', 'json', store.destinationPath, SERVER], barman.env);
  for (const b of JSON.parse(list.stdout).backups_list) ids.set(b.backup_name, b.backup_id);
  await pg.destroy();
});

/** Re-encodes the data.tar of the backup named `name` as data.tar.snappy (barman's framing). */
async function snappyEncode(name: string): Promise<void> {
  const s = await openObjectStore(store.resolved(SERVER));
  try {
    const { listBackups, findBackup } = await import('../../src/catalog/catalog.js');
    const id = findBackup(await listBackups(s, SERVER), name).backup_id;
    const key = `${backupPrefix(SERVER, id)}data.tar`;
    const encoded = (await s.get(key)).pipe(compressStream('snappy'));
    await s.put(`${key}.snappy`, encoded);
    await s.delete([key]);
  } finally {
    await s.close();
  }
}

after(async () => {
  for (const r of recovered) await r.destroy();
  await pg?.destroy();
  await store?.stop();
});

for (const [i, [codec]] of CODECS.entries()) {
  test(`barman-cloud-backup ${codec === 'none' ? 'without compression' : codec}: recovered to its consistent point with exactly the rows before it`, async () => {
    const name = `from-barman-${codec}`;
    const { result, recovered: r } = await restore(
      recoveryManifest(store, { name, sourceName: SERVER, recoveryTarget: { backupID: ids.get(`b-${codec}`), targetImmediate: true } }),
      ['--start', '--json'],
    );
    recovered.push(r);
    assert.equal(result.code, 0, result.stderr);
    const objects = JSON.parse(result.stdout).plan.backup.objects as { key: string; codec: string }[];
    if (codec === 'gzip-parts') {
      assert.ok(objects.length >= 3, `parts: ${objects.map((o) => o.key).join(' ')}`);
      assert.deepEqual(new Set(objects.map((o) => o.key.slice(o.key.lastIndexOf('/') + 1).replace(/_\d{4}/, ''))), new Set(['data.tar.gz']));
      assert.deepEqual(new Set(objects.map((o) => o.codec)), new Set(['gzip']));
    } else assert.deepEqual(objects.map((o) => o.codec), [codec]);
    // barman-cloud writes no backup_manifest: the output must not claim a per-file check.
    assert.deepEqual(JSON.parse(result.stdout).download.verification.manifest, false);
    assert.match(result.stderr, /NOT verified file by file: the backup has no backup_manifest/);
    // Nor a whole-object check: barman-cloud records no digest of what it stored.
    assert.deepEqual(JSON.parse(result.stdout).download.objects.digests, false);
    assert.match(result.stderr, /stored objects NOT verified as a whole: backup.info records no SHA-256/);
    assert.deepEqual(await batches(r), Array.from({ length: i + 1 }, (_, k) => k + 1));
  });
}
