/**
 * A tablespace outside PGDATA is restored to its location, linked from pg_tblspc, with mode 0700;
 * a location that is not empty is refused before anything is downloaded.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirForServer, serverIdentity } from '../../src/pg/local-server.js';
import { startStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { archiveCurrentWal, backupOrigin, recoveryManifest, restore, startOrigin, type Recovered } from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('tablespace restored to its location with its pg_tblspc link; a non-empty location is refused', async () => {
  const store = await startStore('file');
  cleanup.push(() => store.stop());
  const dir = scratchDir('tblspc');
  cleanup.push(() => dir.cleanup());
  const location = join(dir.path, 'ts1');
  mkdirForServer(location, serverIdentity());
  const origin = await startOrigin(store);
  cleanup.push(() => origin.pg.destroy());
  await origin.pg.query(`CREATE TABLESPACE ts1 LOCATION '${location}'`);
  await origin.pg.query('CREATE TABLE far (id int) TABLESPACE ts1');
  await origin.pg.query('INSERT INTO far SELECT generate_series(1, 1000)');
  const [{ oid }] = await origin.pg.query<{ oid: number }>("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");
  await backupOrigin(origin);
  await archiveCurrentWal(origin.pg);
  await origin.pg.destroy();

  // The old location still holds files: refused, nothing downloaded.
  writeFileSync(join(location, 'leftover'), 'x');
  const before = readdirSync(location).sort();
  const refused = await restore(recoveryManifest(store, { name: 'tblspc-refused', sourceName: 'origin' }));
  cleanup.push(() => refused.recovered.destroy());
  assert.equal(refused.result.code, 2);
  assert.match(refused.result.stderr, new RegExp(`tablespace "ts1" location ${location} is not empty`));
  assert.ok(!existsSync(refused.recovered.pgdata));
  assert.deepEqual(readdirSync(location).sort(), before, 'old location untouched');

  rmSync(location, { recursive: true, force: true });
  const { result, recovered } = await restore(recoveryManifest(store, { name: 'tblspc', sourceName: 'origin' }), ['--start']);
  const r: Recovered = recovered;
  cleanup.push(() => r.destroy());
  assert.equal(result.code, 0, result.stderr);
  assert.equal(readlinkSync(join(r.pgdata, 'pg_tblspc', String(oid))), location);
  assert.equal(statSync(location).mode & 0o777, 0o700);
  assert.equal(statSync(r.pgdata).mode & 0o777, 0o700);
  const [{ n }] = await r.query<{ n: string }>('SELECT count(*) AS n FROM far');
  assert.equal(Number(n), 1000);
  assert.ok(readdirSync(location).some((d) => d.startsWith('PG_15_')));
});
