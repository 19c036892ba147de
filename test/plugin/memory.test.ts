/**
 * The sidecar's memory budget (src/config/memory.ts): the formula's sizes for given budgets, where
 * the budget comes from (PGARK_MEMORY_BUDGET, the cgroup files' documented formats), and a real
 * `pgark plugin serve --role instance` under a 128Mi budget with the operator's NODE_OPTIONS: it
 * archives a real PostgreSQL 15's WAL and takes a Backup, its peak RSS under the budget plus a
 * margin for a busy machine, data.tar in two parts written one at a time; the Backup service's
 * request carries the budget's part size and parts in flight. No cgroup can be created here, so the cgroup files are read through
 * an injected reader holding the kernel's documented formats (cgroup v2 memory.max "max" or
 * bytes; v1 memory.limit_in_bytes with its near-2^63 "unlimited").
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { collectionDue, COLLECT_INTERVAL_MS } from '../../src/util/gc.js';
import { BASE, cgroupLimit, memoryBudget, parseQuantity, PART, SIDECAR_ENV, SIDECAR_NODE_OPTIONS, WAL_PUSH, MemoryPlan } from '../../src/config/memory.js';
import { UserError } from '../../src/util/errors.js';
import type { PgServer } from '../harness/postgres.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterJson, pluginCluster } from '../harness/cnpg-client.js';
import { createTestData } from '../backup/helpers.js';
import { writeStoreManifests } from './helpers.js';
import { backupRequestFor, sidecarPgOptions } from '../../src/plugin/backup-service.js';
import type { PluginCluster } from '../../src/plugin/config.js';
import { injectionTarget, lifecyclePatch, SIDECAR_NAME, type SidecarConfiguration } from '../../src/plugin/operator/lifecycle-patch.js';
import { PLUGIN_NAME, startPluginArchivedServer, type Sidecar } from './sidecar-process.js';
import { openObjectStore } from '../../src/storage/open.js';
import { backupPrefix } from '../../src/catalog/layout.js';

const MiB = 1024 * 1024;

test('the formula: WAL segments and backup parts in flight under 64Mi, 128Mi, 192Mi and 1Gi; nothing capped without a budget', () => {
  const at = (mib: number) => new MemoryPlan({ bytes: mib * MiB, from: 'PGARK_MEMORY_BUDGET' });
  // 128Mi: spare = 128 - 96 = 32 MiB: five streaming WAL pushes of 6 MiB;
  // half of it, 16 MiB, is three 5 MiB parts: two being assembled, one uploaded.
  assert.equal(at(128).walParallel(4), 4);
  assert.equal(at(128).walParallel(8), 5);
  // data.tar's parts are written one at a time: a second at once would need three more slots.
  assert.deepEqual(at(128).backupUpload(2), { partSize: PART, queueSize: 1, maxParts: 1 });
  assert.deepEqual(at(128).backupUpload(8), { partSize: PART, queueSize: 1, maxParts: 1 });
  // 192Mi: spare 96 MiB = 16 pushes; 48 MiB = 9 parts, 7 uploaded, capped at max(2, jobs).
  assert.equal(at(192).walParallel(32), 16);
  assert.equal(at(192).walParallel(2), 2, 'never more than wal.maxParallel');
  // Two data.tar parts of 4 slots each (2 uploaded, 2 being filled): 8 of the 9.
  assert.deepEqual(at(192).backupUpload(2), { partSize: PART, queueSize: 4, maxParts: 2 });
  assert.deepEqual(at(1024).backupUpload(6), { partSize: PART, queueSize: 36, maxParts: 6 }, 'never more parts than max(2, jobs) per tar, nor more tars than jobs');
  // A budget below the baseline still archives, one segment at a time.
  assert.equal(at(64).walParallel(4), 1);
  assert.deepEqual(at(64).backupUpload(2), { partSize: PART, queueSize: 1, maxParts: 1 });
  const none = new MemoryPlan(undefined);
  assert.equal(none.walParallel(7), 7);
  assert.deepEqual(none.backupUpload(2), {});
  // 112Mi: 16 MiB spare, two pushes.
  assert.equal(at(112).walParallel(8), 2);
  assert.equal(BASE + 5 * WAL_PUSH + 2 * MiB, 128 * MiB);
});

test('the collector: nothing under the threshold; over it, a full collection only once the Buffers grew REGROWTH past the fewest seen since the last one, at most every 200 ms', () => {
  const threshold = 96 * MiB;
  const state = { lastFull: 0, floor: 0 };
  const at = (ms: number, rssMiB: number, buffersMiB: number) => collectionDue(state, { rss: rssMiB * MiB, external: buffersMiB * MiB }, ms, threshold);
  assert.equal(at(1000, 95, 40), false, 'under the threshold');
  assert.equal(at(1050, 110, 30), true, 'over it, and 30 MiB of Buffers over the floor (0)');
  assert.equal(at(1100, 110, 26), false, 'V8 frees them on a background thread: the floor follows the fewest seen since, not the first check');
  assert.equal(at(1150, 104, 12), false);
  assert.equal(state.floor, 12 * MiB);
  assert.equal(at(1300, 140, 19), false, 'a resident set over the threshold alone is no reason: 7 MiB of Buffers would not pay for a collection');
  assert.equal(at(1350, 120, 20), true, 'REGROWTH (8 MiB) of Buffers over the floor');
  assert.equal(at(1400, 110, 12), false);
  assert.equal(at(1350 + COLLECT_INTERVAL_MS - 1, 130, 60), false, 'at most one full collection per COLLECT_INTERVAL_MS');
  assert.equal(at(1350 + COLLECT_INTERVAL_MS, 130, 60), true);
});

test('PGARK_MEMORY_BUDGET: Kubernetes quantities; a bad one names the variable and the expected form', () => {
  assert.equal(parseQuantity('128Mi', 'x'), 128 * MiB);
  assert.equal(parseQuantity('0.5Gi', 'x'), 512 * MiB);
  assert.equal(parseQuantity('134217728', 'x'), 128 * MiB);
  assert.equal(parseQuantity('200M', 'x'), 200e6);
  assert.deepEqual(memoryBudget({ PGARK_MEMORY_BUDGET: '256Mi' }, () => 128 * MiB), { bytes: 256 * MiB, from: 'PGARK_MEMORY_BUDGET' });
  for (const bad of ['128MB', '-1Mi', '0', 'lots']) {
    assert.throws(
      () => memoryBudget({ PGARK_MEMORY_BUDGET: bad }, () => undefined),
      (e: unknown) => e instanceof UserError && /PGARK_MEMORY_BUDGET ".*" is not a memory size/.test(e.message) && /128Mi/.test(e.hint ?? ''),
      bad,
    );
  }
});

test('the cgroup limit: v2 memory.max, v1 limit_in_bytes, and their "no limit" forms', () => {
  const files = (map: Record<string, string>) => (path: string) => {
    if (!(path in map)) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    return map[path];
  };
  assert.equal(cgroupLimit(files({ '/sys/fs/cgroup/memory.max': '134217728\n' })), 128 * MiB);
  assert.equal(cgroupLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
  assert.equal(cgroupLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '268435456\n' })), 256 * MiB);
  assert.equal(cgroupLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' })), undefined);
  assert.equal(cgroupLimit(files({})), undefined);
  // Two thirds of the container's limit: the default 192Mi plans for 128Mi.
  assert.deepEqual(memoryBudget({}, () => 192 * MiB), { bytes: 128 * MiB, from: 'cgroup' });
  assert.equal(memoryBudget({}, () => undefined), undefined);
});

let store: TestStore;
let dir: { path: string; cleanup(): void };
let pg: PgServer;
let sidecar: Sidecar;
let cluster: object;

before(async () => {
  store = await startStore('s3');
  dir = scratchDir('plugin-memory');
  const objectStores = writeStoreManifests(dir.path, store, 'store', { configuration: { wal: { maxParallel: 4 }, data: { jobs: 2 } } });
  cluster = pluginCluster({ name: 'budget', pluginName: PLUGIN_NAME, barmanObjectName: 'store' });
  ({ pg, sidecar } = await startPluginArchivedServer({
    dir: dir.path,
    manifests: [objectStores],
    cluster,
    parameters: { barmanObjectName: 'store' },
    // A 10 MB part minimum stands in for 256 MiB: the Backup below writes data.tar in two parts, one at a time.
    env: { PGARK_MEMORY_BUDGET: '128Mi', PGARK_BACKUP_PART_MIN: '10000000', ...SIDECAR_ENV },
  }));
  await createTestData(pg, 200_000);
});

after(async () => {
  await sidecar?.stop();
  await pg?.destroy();
  await store?.stop();
  dir?.cleanup();
});

test("the Backup service's request under a 128Mi budget: 5 MiB parts, one at a time; without a budget, run.ts's defaults", async () => {
  const call = { clusterDefinition: clusterJson(cluster), backupDefinition: Buffer.from(JSON.stringify({ metadata: { name: 'sized' }, spec: { method: 'plugin' } })), parameters: { jobs: '4' } };
  const deps = { targetStore: async () => store.resolved('budget'), pg: sidecarPgOptions({}), version: 'test' };
  const budgeted = await backupRequestFor({ ...deps, memory: new MemoryPlan({ bytes: 128 * MiB, from: 'cgroup' }) }, call);
  assert.equal(budgeted.jobs, 4);
  assert.equal(budgeted.partSize, PART);
  assert.equal(budgeted.queueSize, 1);
  const free = await backupRequestFor({ ...deps, memory: new MemoryPlan(undefined) }, call);
  assert.equal(free.partSize, undefined);
  assert.equal(free.queueSize, undefined);
});

test('a sidecar under a 128Mi budget says so, caps WAL at five segments, and takes a Backup within it', async () => {
  const budget = sidecar.log().split('\n').find((l) => l.includes('sidecar memory budget'));
  assert.ok(budget, sidecar.log().slice(-2000));
  const logged = JSON.parse(budget) as { budgetMiB: number; from: string; walParallelMax: number; backupUpload: { partSize: number; queueSize: number; maxParts: number } };
  assert.equal(logged.budgetMiB, 128);
  assert.equal(logged.from, 'PGARK_MEMORY_BUDGET');
  assert.equal(logged.walParallelMax, 5);
  assert.deepEqual(logged.backupUpload, { partSize: PART, queueSize: 1, maxParts: 1 });

  const backupDefinition = Buffer.from(JSON.stringify({ metadata: { name: 'under-budget' }, spec: { method: 'plugin', onlineConfiguration: { immediateCheckpoint: true } } }));
  const r = await sidecar.client.call('cnpgi.backup.v1.Backup', 'Backup', { clusterDefinition: clusterJson(cluster), backupDefinition, parameters: {} });
  assert.match(r.backupId, /^\d{8}T\d{6}$/);
  assert.ok(Number(r.metadata['pgark:stored-bytes']) > 4 * PART, `a tar of several parts (${r.metadata['pgark:stored-bytes']} bytes)`);
  // Backup returns only once its end WAL is in the store: archived through this budgeted sidecar.
  assert.ok(r.endWal, 'end WAL recorded');
  const s = await openObjectStore(store.resolved('budget'));
  try {
    const tars: string[] = [];
    for await (const { object: o } of s.list(backupPrefix('budget', r.backupId))) if (o && /\/data(_\d{4})?\.tar$/.test(o.key)) tars.push(o.key.slice(o.key.lastIndexOf('/') + 1));
    assert.deepEqual(tars.sort(), ['data.tar', 'data_0001.tar'], 'two parts (jobs 2), written one at a time under the budget');
  } finally {
    await s.close();
  }

  // A generous margin over the budget: the bar itself is measured by bench/plugin.ts, where nothing else shares the process.
  const peak = sidecar.peakRss();
  assert.ok(peak < 128 * MiB + 48 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB`);
});

test("the injected sidecar runs with SIDECAR_NODE_OPTIONS and glibc's mmap threshold fixed at 256 KiB; an ObjectStore's own NODE_OPTIONS wins", () => {
  const c = pluginCluster({ name: 'budget', namespace: 'default', pluginName: PLUGIN_NAME, barmanObjectName: 'store' }) as PluginCluster;
  const pod = { kind: 'Pod', metadata: { name: 'budget-1' }, spec: { containers: [{ name: 'postgres', image: 'pg', env: [{ name: 'NODE_OPTIONS', value: '--from-postgres' }] }] } };
  const target = injectionTarget(c, pod, PLUGIN_NAME)!;
  const envOf = (sidecar?: SidecarConfiguration) => {
    const ops = lifecyclePatch(c, pod, target, { pluginName: PLUGIN_NAME, image: 'pgark', sidecar });
    const inits = ops.find((o) => o.path === '/spec/initContainers')!.value as { name: string; env: { name: string; value?: string }[] }[];
    return inits.find((i) => i.name === SIDECAR_NAME)!.env.filter((e) => e.name === 'NODE_OPTIONS' || e.name === 'MALLOC_MMAP_THRESHOLD_');
  };
  const malloc = { name: 'MALLOC_MMAP_THRESHOLD_', value: '262144' };
  assert.deepEqual(envOf(), [{ name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS }, malloc]);
  assert.deepEqual(envOf({ env: [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' }] }), [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' }, malloc]);
});
