/**
 * Logical backup and the restore tool reach Azurite with nothing but AZURE_STORAGE_CONNECTION_STRING
 * (the az CLI / Azure SDK convention), and a broken one is refused without being shown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../harness/postgres.js';
import { startAzurite } from '../harness/azurite.js';
import { RESTORE_SH, createDataset, dbEnv, fingerprint, pgEnv, pgark, run } from './helpers.js';

test('logical backup, list and restore with only AZURE_STORAGE_CONNECTION_STRING', async () => {
  const src = await startPostgres();
  const dst = await startPostgres();
  const az = await startAzurite();
  try {
    await createDataset(src, 'conn', 200);
    const expected = await fingerprint(src, 'conn');
    const azure = { PATH: process.env.PATH, AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
    const location = { SCOPE: 'conn-cluster', LOGICAL_BACKUP_PROVIDER: 'az', LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER: az.container };

    const b = await pgark(['logical', 'backup', '--database', 'conn'], { ...azure, ...pgEnv(src), ...location });
    assert.equal(b.code, 0, b.stderr);
    const list = await pgark(['logical', 'list', '--json'], { ...azure, ...location });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /conn\.sql\.gz/);

    const r = await run(RESTORE_SH, [], {
      ...azure,
      RESTORE_MODE: 'non-interactive',
      STORAGE_PROVIDER: 'azure',
      AZURE_STORAGE_CONTAINER_NAME: az.container,
      AZURE_STORAGE_BACKUP_PATH: 'latest',
      ...dbEnv(dst, 'conn'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored ".*conn\.sql\.gz" into database "conn".*SHA-256 verified/);
    assert.deepEqual(await fingerprint(dst, 'conn'), expected);

    const broken = await pgark(['logical', 'list'], { ...azure, AZURE_STORAGE_CONNECTION_STRING: 'AccountKey=BROKEN-SECRET-9', ...location });
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /AZURE_STORAGE_CONNECTION_STRING: invalid: Azure Storage connection string/);
    assert.ok(!(broken.stdout + broken.stderr).includes('BROKEN-SECRET-9'), broken.stderr);
  } finally {
    await az.stop();
    await dst.stop();
    await src.stop();
  }
});
