/**
 * The catalog commands (`pgark backup list | show | delete`) load what reading a catalog needs and
 * not what taking a backup needs: the PostgreSQL client, the tar writer and the zstd codec cost
 * about 0.1 CPU s of every start (README.md "Test suite"). A module preloaded through NODE_OPTIONS
 * writes, as the process exits, which CommonJS packages it loaded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { pgark } from '../backup/helpers.js';

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
  const loaded = join(dir.path, 'loaded.json');
  const preload = join(dir.path, 'loaded-packages.mjs');
  writeFileSync(
    preload,
    `import { createRequire } from 'node:module';\n` +
      `import { writeFileSync } from 'node:fs';\n` +
      `const cache = createRequire(import.meta.url).cache;\n` +
      `process.on('exit', () => {\n` +
      `  const packages = Object.keys(cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(f)?.[1]).filter(Boolean);\n` +
      `  writeFileSync(${JSON.stringify(loaded)}, JSON.stringify([...new Set(packages)]));\n` +
      `});\n`,
  );
  const r = await pgark(['backup', 'list', '-f', manifest, '--json'], { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { backups_list: unknown[] }).backups_list, [], 'an empty store lists no backups');
  const packages = JSON.parse(readFileSync(loaded, 'utf8')) as string[];
  assert.ok(packages.includes('yaml'), `the preload saw the packages loaded (yaml reads the manifest): ${packages.join(', ')}`);
  assert.deepEqual(TAKING_A_BACKUP_ONLY.filter((p) => packages.includes(p)), [], `loaded: ${packages.join(', ')}`);
});
