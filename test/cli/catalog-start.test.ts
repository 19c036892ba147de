/**
 * The catalog commands (`pgark backup list | show | delete`) load what reading a catalog needs and
 * not what taking a backup needs: the PostgreSQL client, the tar writer and the zstd codec cost
 * about 0.1 CPU s of every start (README.md "Test suite"). Nor does a restore load the PostgreSQL
 * client before it starts a server (0.03 CPU s of each restore's start). harness/module-trace.ts
 * says which modules the process loaded, bundled or not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { pgark } from '../backup/helpers.js';
import { recoveryManifest } from '../recovery/helpers.js';
import { modulePreload, packagesOf, tracedModules, TRACE_OUT } from '../harness/module-trace.js';

const TAKING_A_BACKUP_ONLY = ['pg', 'tar-stream', 'zstd-napi'];

let store: TestStore;
const dir = scratchDir('catalog-start');

before(async () => {
  store = await startStore('file');
});

after(async () => {
  await store.stop();
  dir.cleanup();
});

test('pgark backup list loads neither the PostgreSQL client, nor the tar writer, nor zstd', async () => {
  const manifest = join(dir.path, 'cluster.yaml');
  writeFileSync(manifest, store.manifest({ clusterName: 'pg' }));
  const loaded = join(dir.path, 'loaded.txt');
  const r = await pgark(['backup', 'list', '-f', manifest, '--json'], { NODE_OPTIONS: modulePreload(dir.path), [TRACE_OUT]: loaded });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { backups_list: unknown[] }).backups_list, [], 'an empty store lists no backups');
  const packages = packagesOf(tracedModules(loaded));
  assert.ok(packages.includes('yaml'), `the preload saw the packages loaded (yaml reads the manifest): ${packages.join(', ')}`);
  assert.deepEqual(TAKING_A_BACKUP_ONLY.filter((p) => packages.includes(p)), [], `loaded: ${packages.join(', ')}`);
});

test('pgark restore loads the PostgreSQL client only to talk to a server it started: not for its pre-checks', async () => {
  const manifest = join(dir.path, 'recovery.yaml');
  writeFileSync(manifest, recoveryManifest(store, { name: 'restored', sourceName: 'pg', noBackup: true }));
  const loaded = join(dir.path, 'restore-loaded.txt');
  const r = await pgark(['restore', '-f', manifest, '--pgdata', join(dir.path, 'restored'), '--dry-run'], { NODE_OPTIONS: modulePreload(dir.path), [TRACE_OUT]: loaded });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no DONE backup/, 'the plan read the (empty) catalog');
  const packages = packagesOf(tracedModules(loaded));
  assert.ok(packages.includes('yaml'), `the preload saw the packages loaded: ${packages.join(', ')}`);
  assert.equal(packages.includes('pg'), false, `loaded: ${packages.join(', ')}`);
});
