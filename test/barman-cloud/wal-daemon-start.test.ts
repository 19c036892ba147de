/**
 * barman-cloud-wal-archive's first call for a store starts the drop-in's daemon: one daemon, however
 * long it takes to start. On a loaded machine a Node start can outlast the client's respawn interval
 * (1 s), and a client that spawned again meanwhile paid one more Node start per second, each
 * slowing the daemon it was waiting for (ten for one call at a load of 18). The daemon is made slow
 * here by a module preloaded through NODE_OPTIONS, which sleeps 2.5 s in daemon-main.js only and
 * first counts the daemon processes started; the store is a real s3rver.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { craftSegment, fakePgdata } from '../wal/helpers.js';
import { runDropin, stopDropinDaemons } from './helpers.js';

const SEG = '000000010000000000000001';

let store: TestStore;
const dir = scratchDir('dropin-daemon-start');

before(async () => {
  store = await startStore('s3');
});

after(async () => {
  await stopDropinDaemons(join(dir.path, 'data'));
  await store.stop();
  dir.cleanup();
});

test('a daemon slower to start than the respawn interval is spawned once, and the segment is stored', async () => {
  const starts = join(dir.path, 'daemon-starts');
  const preload = join(dir.path, 'slow-daemon.mjs');
  writeFileSync(
    preload,
    `import { appendFileSync } from 'node:fs';\n` +
      `if (process.argv[1]?.endsWith('daemon-main.js')) {\n` +
      `  appendFileSync(${JSON.stringify(starts)}, process.pid + '\\n');\n` +
      `  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);\n` +
      `}\n`,
  );
  const d = fakePgdata(dir.path);
  const data = craftSegment(SEG);
  const env = {
    AWS_ACCESS_KEY_ID: store.s3rver!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: store.s3rver!.secretAccessKey,
    AWS_DEFAULT_REGION: store.s3rver!.region,
    NODE_OPTIONS: `--import ${pathToFileURL(preload).href}`,
  };
  const r = runDropin('barman-cloud-wal-archive', ['--endpoint-url', store.endpointURL!, '--cloud-provider', 'aws-s3', store.destinationPath, 'srv', d.addReady(SEG, data)], env, d.pgdata);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /not using the WAL daemon/, 'the daemon answered: the call did not fall back to working in-process');
  assert.ok(existsSync(starts), 'the daemon was started');
  const pids = readFileSync(starts, 'utf8').trim().split('\n');
  assert.equal(pids.length, 1, `daemon processes started for one call: ${pids.join(', ')}`);
  const objects = await openObjectStore(store.resolved('srv'));
  try {
    assert.ok((await objects.getBuffer(`srv/wals/0000000100000000/${SEG}`)).equals(data), 'the stored object holds the segment');
  } finally {
    await objects.close();
  }
});
