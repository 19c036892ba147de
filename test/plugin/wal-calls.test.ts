/**
 * The WAL service called as CNPG's instance manager calls it (client from the upstream protos),
 * against a plugin running in this process on a real s3rver: Archive into barman-cloud's layout,
 * the archiver guard (CNPG#11351), check_empty_wal_archive, Restore byte-identical with prefetch
 * in recovery and none in MODE_REWIND, OUT_OF_RANGE for a segment the prefetch just found beyond
 * the end of the archive (on a replica only, once, never for pg_rewind), the gRPC code of each
 * failure, and Status / SetFirstRequired round trips through the store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { readFirstRequired } from '../../src/plugin/first-required.js';
import { startPlugin, type RunningPlugin } from '../../src/plugin/serve.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { clusterJson, cnpgClient, objectStoreDoc, pluginCluster, WAL, type CnpgClient } from '../harness/cnpg-client.js';
import { freePort } from '../harness/ports.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, type FakePgdata } from '../wal/helpers.js';
import { until, writeStoreManifests } from './helpers.js';

const SEGS = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003'];
const SYSID = 7300000000000000042n;

/** The restore_command client (dist/test/harness/cnpg-wal-command.js) run in `cwd`, as PostgreSQL runs it; resolves with its exit code and stderr. */
function walCommand(cwd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'test', 'harness', 'cnpg-wal-command.js'), ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) keys.push(e.object.key);
  return keys.sort();
}

async function rejects(p: Promise<unknown>, code: status, message: RegExp): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string };
    assert.equal(status[e.code], status[code], e.details);
    assert.match(e.details, message);
    return e.details;
  }
  assert.fail(`expected ${status[code]}`);
}

describe('WAL service', () => {
  const dir = scratchDir('plugin-wal');
  let store: TestStore;
  let raw: ObjectStore;
  let plugin: RunningPlugin;
  let client: CnpgClient;
  let primary: FakePgdata;
  const segments = new Map<string, Buffer>();
  const cluster = clusterJson(pluginCluster({ name: 'calls', pluginName: 'pgark.io', barmanObjectName: 'store' }));

  before(async () => {
    store = await startStore('s3');
    raw = await openObjectStore(store.resolved('calls'));
    const deadPort = await freePort();
    const file = writeStoreManifests(dir.path, store, 'store', {
      configuration: { wal: { maxParallel: 3 } },
      extraDocs: [
        objectStoreDoc('stopped', { ...store.objectStoreConfig(), endpointURL: `http://127.0.0.1:${deadPort}` }),
        objectStoreDoc('no-secret', { ...store.objectStoreConfig(), s3Credentials: { accessKeyId: { name: 'absent', key: 'ID' }, secretAccessKey: { name: 'absent', key: 'KEY' } } }),
      ],
    });
    plugin = await startPlugin({ role: 'instance', name: 'pgark.io', socketDir: join(dir.path, 'sock'), files: [file] });
    client = cnpgClient(plugin.server.socketPath);
    primary = fakePgdata(join(dir.path, 'primary'));
    for (const name of SEGS) {
      const data = craftSegment(name, SYSID);
      segments.set(name, data);
      primary.addReady(name, data);
    }
  });
  after(async () => {
    client?.close();
    await plugin?.close();
    await raw?.close();
    await store?.stop();
    dir.cleanup();
  });

  test('Archive stores each segment (full path from CNPG) in barman-cloud\'s layout, byte-identical; a repeated call is a success', async () => {
    for (const name of SEGS) {
      await client.call(WAL, 'Archive', { clusterDefinition: cluster, sourceFileName: join(primary.walDir, name), parameters: {}, checkEmptyWalArchive: false });
    }
    await client.call(WAL, 'Archive', { clusterDefinition: cluster, sourceFileName: join(primary.walDir, SEGS[0]), parameters: {} });
    assert.deepEqual(await keysUnder(raw, 'calls/'), SEGS.map((s) => `calls/wals/0000000100000000/${s}`));
    for (const name of SEGS) assert.ok((await raw.getBuffer(`calls/wals/0000000100000000/${name}`)).equals(segments.get(name)!));
    // pg_wal/archive_status is PostgreSQL's: the plugin never renames .ready.
    assert.deepEqual(readdirSync(join(primary.walDir, 'archive_status')).sort(), SEGS.map((s) => `${s}.ready`));
  });

  test('a plugin entry that is not the WAL archiver receives Archive and writes nothing (CNPG#11351)', async () => {
    const other = { name: 'barman-cloud.cloudnative-pg.io', isWALArchiver: true, parameters: { barmanObjectName: 'elsewhere' } };
    const notArchiver = pluginCluster({ name: 'source', pluginName: 'pgark.io', barmanObjectName: 'store', isWALArchiver: false, otherPlugins: [other] });
    const inTree = { ...pluginCluster({ name: 'source', pluginName: 'pgark.io', barmanObjectName: 'store', isWALArchiver: false }) } as { spec: Record<string, unknown> };
    inTree.spec.backup = { barmanObjectStore: { destinationPath: 's3://other/' } };
    for (const c of [notArchiver, inTree]) {
      await client.call(WAL, 'Archive', { clusterDefinition: clusterJson(c), sourceFileName: join(primary.walDir, SEGS[0]), parameters: { barmanObjectName: 'store' }, checkEmptyWalArchive: false });
    }
    assert.deepEqual(await keysUnder(raw, 'source/'), []);
    // The only enabled entry, no in-tree store, isWALArchiver unset: it is the archiver.
    const only = pluginCluster({ name: 'only', pluginName: 'pgark.io', barmanObjectName: 'store' }) as { spec: { plugins: { isWALArchiver?: boolean }[] } };
    delete only.spec.plugins[0].isWALArchiver;
    await client.call(WAL, 'Archive', { clusterDefinition: clusterJson(only), sourceFileName: join(primary.walDir, SEGS[0]), parameters: {}, checkEmptyWalArchive: false });
    assert.deepEqual(await keysUnder(raw, 'only/'), [`only/wals/0000000100000000/${SEGS[0]}`]);
  });

  test('check_empty_wal_archive: set or unset, another system\'s WAL is refused with CNPG\'s marker present; false skips the check', async () => {
    const stranger = fakePgdata(join(dir.path, 'stranger'));
    const name = '000000010000000000000009';
    stranger.addReady(name, craftSegment(name, 7399999999999999999n));
    const marker = join(stranger.pgdata, '.check-empty-wal-archive');
    const path = join(stranger.walDir, name);
    for (const flag of [{ checkEmptyWalArchive: true }, {}]) {
      writeFileSync(marker, '');
      await rejects(client.call(WAL, 'Archive', { clusterDefinition: cluster, sourceFileName: path, parameters: {}, ...flag }), status.FAILED_PRECONDITION, /Expected empty archive/);
    }
    assert.ok(!(await keysUnder(raw, 'calls/')).some((k) => k.endsWith(name)), 'nothing stored');
    await client.call(WAL, 'Archive', { clusterDefinition: cluster, sourceFileName: path, parameters: {}, checkEmptyWalArchive: false });
    assert.ok((await keysUnder(raw, 'calls/')).some((k) => k.endsWith(name)), 'stored when the operator says not to check');
    await raw.delete([`calls/wals/0000000100000000/${name}`]);
  });

  test('Restore fetches a segment byte-identical and prefetches the next wal.maxParallel-1; MODE_REWIND fetches only the one asked for', async () => {
    const recovering = fakePgdata(join(dir.path, 'recovering'));
    const dest = join(recovering.walDir, 'RECOVERYXLOG');
    await client.call(WAL, 'Restore', { clusterDefinition: cluster, sourceWalName: SEGS[0], destinationFileName: dest, parameters: {}, mode: 'MODE_RECOVERY' });
    assert.ok(readFileSync(dest).equals(segments.get(SEGS[0])!));
    const spool = walRuntime(recovering.pgdata).restoreSpool;
    const spooled = () => readdirSync(spool, { recursive: true }).map(String).filter((f) => /^[0-9A-F]{24}$/.test(f.split('/').pop()!));
    await until('the prefetch of segments 2 and 3', () => spooled().length === 2);

    const rewinding = fakePgdata(join(dir.path, 'rewinding'));
    const rewindDest = join(rewinding.walDir, SEGS[0]);
    await client.call(WAL, 'Restore', { clusterDefinition: cluster, sourceWalName: SEGS[0], destinationFileName: rewindDest, parameters: {}, mode: 'MODE_REWIND' });
    assert.ok(readFileSync(rewindDest).equals(segments.get(SEGS[0])!));
    // A prefetch would have had to create the runtime directory and its restore spool.
    assert.ok(!existsSync(walRuntime(rewinding.pgdata).restoreSpool), 'no spool: nothing prefetched');
    assert.deepEqual(readdirSync(rewinding.walDir).sort(), [SEGS[0], 'archive_status']);

    // The restore_command client, as CNPG's `wal-restore %f %p`: %p relative to PGDATA.
    const clusterFile = join(dir.path, 'cluster.json');
    const paramsFile = join(dir.path, 'params.json');
    writeFileSync(clusterFile, cluster);
    writeFileSync(paramsFile, '{}');
    const viaCommand = fakePgdata(join(dir.path, 'command'));
    const ok = await walCommand(viaCommand.pgdata, ['restore', plugin.server.socketPath, clusterFile, paramsFile, SEGS[2], 'pg_wal/RECOVERYXLOG']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(readFileSync(join(viaCommand.walDir, 'RECOVERYXLOG')).equals(segments.get(SEGS[2])!));
    const missing = await walCommand(viaCommand.pgdata, ['restore', plugin.server.socketPath, clusterFile, paramsFile, '000000010000000000000004', 'pg_wal/RECOVERYXLOG']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NOT_FOUND/);
  });

  test('a replica asking for a segment its prefetch just found missing gets OUT_OF_RANGE once, without the store; pg_rewind never does', async () => {
    // CNPG sends the Cluster with its status: this pod (POD_NAME) is not the current primary, so streaming can take over.
    const replicaCluster = clusterJson({ ...pluginCluster({ name: 'calls', pluginName: 'pgark.io', barmanObjectName: 'store' }), status: { currentPrimary: 'calls-1' } });
    const saved = process.env.POD_NAME;
    process.env.POD_NAME = 'calls-2';
    try {
      const standby = fakePgdata(join(dir.path, 'standby'));
      const restore = (name: string, mode = 'MODE_RECOVERY') =>
        client.call(WAL, 'Restore', { clusterDefinition: replicaCluster, sourceWalName: name, destinationFileName: join(standby.walDir, 'RECOVERYXLOG'), parameters: {}, mode });
      // The last archived segment: its prefetch (wal.maxParallel 3) looks for 04 and 05 and finds neither.
      await restore(SEGS[2]);
      const next = '000000010000000000000004';
      const afterNext = '000000010000000000000005';
      // Until the prefetch has answered, 04 is looked up in the store (NOT_FOUND); then it is known missing.
      const codes: string[] = [];
      await until('OUT_OF_RANGE for the segment after the last', async () => {
        const code = await restore(next).then(() => 'OK', (e: { code: number }) => status[e.code]);
        codes.push(code);
        return code === 'OUT_OF_RANGE';
      });
      assert.ok(codes.slice(0, -1).every((c) => c === 'NOT_FOUND'), codes.join(','));
      // Answered once, as CNPG resets its end-of-wal-stream flag: the next ask goes to the store again.
      await rejects(restore(next), status.NOT_FOUND, /not found/);
      // pg_rewind's fetch is never answered from that knowledge and does not consume it.
      await rejects(restore(afterNext, 'MODE_REWIND'), status.NOT_FOUND, /not found/);
      await rejects(restore(afterNext), status.OUT_OF_RANGE, /end of the WAL archive: 000000010000000000000005/);
      assert.ok(!existsSync(join(standby.walDir, 'RECOVERYXLOG')) || readFileSync(join(standby.walDir, 'RECOVERYXLOG')).equals(segments.get(SEGS[2])!), 'no failed call replaced the restored file');
    } finally {
      if (saved === undefined) delete process.env.POD_NAME;
      else process.env.POD_NAME = saved;
    }
  });

  test('each failure has its gRPC code and a message naming what to fix, never a secret', async () => {
    const dest = join(dir.path, 'errors', 'pg_wal', 'RECOVERYXLOG');
    mkdirSync(join(dir.path, 'errors', 'pg_wal'), { recursive: true });
    const restore = (over: Record<string, unknown>) =>
      client.call(WAL, 'Restore', { clusterDefinition: cluster, sourceWalName: SEGS[0], destinationFileName: dest, parameters: {}, ...over });
    await rejects(restore({ sourceWalName: '0000000100000000000000FE' }), status.NOT_FOUND, /WAL file 0000000100000000000000FE not found/);
    await rejects(restore({ sourceWalName: 'bogus' }), status.INVALID_ARGUMENT, /"bogus" is not a WAL file name/);
    await rejects(restore({ destinationFileName: 'pg_wal/RECOVERYXLOG' }), status.INVALID_ARGUMENT, /not an absolute path/);
    await rejects(restore({ clusterDefinition: Buffer.from('{"spec": ') }), status.INVALID_ARGUMENT, /cluster_definition is not JSON/);
    await rejects(restore({ clusterDefinition: Buffer.from('{"spec": {}}') }), status.INVALID_ARGUMENT, /metadata/);
    const named = (objectName: string) => clusterJson(pluginCluster({ name: 'calls', pluginName: 'pgark.io', barmanObjectName: objectName }));
    await rejects(restore({ clusterDefinition: named('missing') }), status.FAILED_PRECONDITION, /ObjectStore missing not found/);
    const noSecret = await rejects(restore({ clusterDefinition: named('no-secret') }), status.FAILED_PRECONDITION, /secret "absent" key "ID" not found/);
    assert.ok(!noSecret.includes(store.secretValues.ACCESS_SECRET_KEY));
    const noEntry = clusterJson({ metadata: { name: 'calls' }, spec: { plugins: [{ name: 'someone-else' }] } });
    await rejects(restore({ clusterDefinition: noEntry }), status.FAILED_PRECONDITION, /no enabled spec.plugins entry named "pgark.io".*\n?.*someone-else|someone-else/);
    const saved = process.env.PGARK_STORAGE_MAX_ATTEMPTS;
    process.env.PGARK_STORAGE_MAX_ATTEMPTS = '1';
    try {
      await rejects(restore({ clusterDefinition: named('stopped') }), status.UNAVAILABLE, /endpoint unreachable/);
    } finally {
      if (saved === undefined) delete process.env.PGARK_STORAGE_MAX_ATTEMPTS;
      else process.env.PGARK_STORAGE_MAX_ATTEMPTS = saved;
    }
    assert.ok(!existsSync(dest), 'no failed call left a file behind');
  });

  test('Status reports the archive\'s first and last WAL; SetFirstRequired persists in the store and shows in Status', async () => {
    const before = await client.call(WAL, 'Status', { clusterDefinition: cluster });
    assert.equal(before.firstWal, SEGS[0]);
    assert.equal(before.lastWal, SEGS[2]);
    assert.equal(before.additionalInformation.segments, '3');
    assert.equal(before.additionalInformation.timelines, '1');
    assert.equal(before.additionalInformation.compression, 'none');
    assert.equal(before.additionalInformation.firstRequiredWal, undefined);

    await client.call(WAL, 'SetFirstRequired', { clusterDefinition: cluster, firstRequiredWal: SEGS[1] });
    assert.equal((await readFirstRequired(raw, 'calls'))?.firstRequiredWal, SEGS[1]);
    assert.equal(plugin.context.firstRequired('calls'), SEGS[1]);
    const afterSet = await client.call(WAL, 'Status', { clusterDefinition: cluster });
    assert.equal(afterSet.additionalInformation.firstRequiredWal, SEGS[1]);
    await rejects(client.call(WAL, 'SetFirstRequired', { clusterDefinition: cluster, firstRequiredWal: 'nope' }), status.INVALID_ARGUMENT, /first_required_wal "nope"/);
    assert.equal((await readFirstRequired(raw, 'calls'))?.firstRequiredWal, SEGS[1], 'a refused call changes nothing');
  });
});
