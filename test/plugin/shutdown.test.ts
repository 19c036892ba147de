/**
 * SIGTERM while a WAL.Archive call is in flight: the store's answer is held back by a fault proxy
 * until the signal has been sent, and the call must still complete (the segment stored), the
 * plugin exit 0 and its socket be removed. A plugin that answered and then lost the segment, or
 * died with the call, would make PostgreSQL retry or, worse, recycle an unarchived segment.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openObjectStore } from '../../src/storage/open.js';
import { clusterJson, cnpgClient, pluginCluster, WAL } from '../harness/cnpg-client.js';
import { matchers, startHttpFaultProxy, type HttpFaultProxy } from '../harness/http-faults.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata } from '../wal/helpers.js';
import { startPluginProcess, writeStoreManifests } from './helpers.js';

const dir = scratchDir('plugin-sigterm');
let store: TestStore | undefined;
let proxy: HttpFaultProxy | undefined;
after(async () => {
  await proxy?.close();
  await store?.stop();
  dir.cleanup();
});

test('SIGTERM during an Archive call: the call completes, the plugin exits 0 and removes its socket', async () => {
  store = await startStore('s3');
  proxy = await startHttpFaultProxy(store.s3rver!.port);
  const file = writeStoreManifests(dir.path, store, 'store', { configuration: { endpointURL: proxy.endpoint } });
  const plugin = await startPluginProcess({ socketDir: join(dir.path, 'plugins'), args: ['-f', file] });
  const client = cnpgClient(plugin.socketPath);
  const pg = fakePgdata(dir.path);
  const name = '000000010000000000000001';
  const data = craftSegment(name);
  pg.addReady(name, data);

  proxy.add({ match: matchers.put, fault: { kind: 'delay', ms: 3000 }, times: 1 });
  const call = client.call(WAL, 'Archive', {
    clusterDefinition: clusterJson(pluginCluster({ name: 'term', pluginName: 'pgark.io', barmanObjectName: 'store' })),
    sourceFileName: join(pg.walDir, name),
    parameters: {},
    checkEmptyWalArchive: false,
  });
  for (let i = 0; proxy.injected === 0; i++) {
    if (i > 600) assert.fail(`the upload never reached the store:\n${plugin.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  plugin.child.kill('SIGTERM');
  await call;
  client.close();
  const exit = await plugin.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, plugin.output());
  assert.ok(!existsSync(plugin.socketPath), 'socket removed');
  assert.match(plugin.output(), /draining calls in flight/);

  const raw = await openObjectStore(store.resolved('term'));
  try {
    assert.ok((await raw.getBuffer(`term/wals/0000000100000000/${name}`)).equals(data));
  } finally {
    await raw.close();
  }
});
