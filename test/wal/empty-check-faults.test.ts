/**
 * The empty-archive gate when the store fails to answer. Without CNPG's marker the gate reads the
 * system identifier of the newest archived segment; a read that fails must fail the archive call
 * (PostgreSQL retries it) and must not count as "passed" for the rest of the daemon's life, or a
 * cluster pointed at another cluster's folder archives into it after one network hiccup.
 * The store is a real file:// store with faults injected into get().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import { StorageError } from '../../src/storage/errors.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { ArchiveService } from '../../src/wal/archive-service.js';
import { archiveWalFile, EmptyArchiveGate } from '../../src/wal/archive.js';
import { ensureRuntimeDirs, walRuntime } from '../../src/wal/runtime.js';
import { WalTargetCache, type WalTarget } from '../../src/wal/target.js';
import { craftSegment, fakePgdata } from './helpers.js';

const SEG1 = '000000010000000000000001';
const SEG2 = '000000010000000000000002';
const SEG3 = '000000010000000000000003';
const OLD_SYSTEM = 333n;

type Fault = 'reject' | 'mid-stream';

describe('empty-archive gate: a failed read of the archive fails the call and is retried', () => {
  const dir = scratchDir('walgate');
  let store: TestStore;
  let real: ObjectStore;
  const faults: Fault[] = [];
  let faulty: ObjectStore;

  before(async () => {
    store = await startStore('file');
    real = await openObjectStore(store.resolved('gate'));
    // get() fails the way a dropped connection does, once per queued fault: before any byte, or after a few.
    faulty = new Proxy(real, {
      get(target, prop) {
        if (prop !== 'get') {
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return async (key: string) => {
          const fault = faults.shift();
          if (fault === 'reject') throw new StorageError('get', key, real.displayUrl, 'unreachable', 'connection reset (injected)');
          const body = await real.get(key);
          if (fault !== 'mid-stream') return body;
          body.destroy();
          const cut = new Readable({ read() {} });
          cut.push(Buffer.alloc(16));
          setImmediate(() => cut.destroy(new StorageError('get', key, real.displayUrl, 'unreachable', 'connection reset mid-body (injected)')));
          return cut;
        };
      },
    });
    const target: WalTarget = { store: real, serverName: 'gate', compression: 'none', maxParallel: 1, skipEmptyCheck: false, description: 'test' };
    const old = fakePgdata(join(dir.path, 'old'));
    old.addReady(SEG1, craftSegment(SEG1, OLD_SYSTEM));
    await archiveWalFile(target, join(old.walDir, SEG1), new EmptyArchiveGate(old.pgdata));
  });
  after(async () => {
    await real.close();
    await store.stop();
    dir.cleanup();
  });

  /** A resident archive service (as in the daemon) for a new data directory holding one segment. */
  function service(label: string, name: string, system: bigint) {
    const d = fakePgdata(join(dir.path, label));
    d.addReady(name, craftSegment(name, system));
    const rt = walRuntime(d.pgdata);
    ensureRuntimeDirs(rt);
    const target: WalTarget = { store: faulty, serverName: 'gate', compression: 'none', maxParallel: 1, skipEmptyCheck: false, description: 'test' };
    const svc = new ArchiveService(rt, new WalTargetCache(async () => ({ fingerprint: label, open: async () => target })));
    return { archive: () => svc.archive(join(d.walDir, name), { files: [] }) };
  }

  async function archivedNames(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of real.list('gate/wals/')) if (e.object) out.push(e.object.key.slice(e.object.key.lastIndexOf('/') + 1));
    return out;
  }

  for (const fault of ['reject', 'mid-stream'] as const) {
    test(`another system's WAL: a read failure (${fault}) fails the call, and the retry refuses`, { timeout: 60_000 }, async () => {
      const s = service(`foreign-${fault}`, SEG2, 444n);
      faults.push(fault);
      await assert.rejects(s.archive(), /injected/);
      assert.deepEqual(faults, [], 'the gate read the archived segment');
      await assert.rejects(s.archive(), /Expected empty archive.*archived WAL belongs to system 333, this cluster is system 444/);
      assert.deepEqual(await archivedNames(), [SEG1], 'nothing of the other system stored');
    });
  }

  test('the same system: a read failure fails the call, and the retry archives', async () => {
    const s = service('same', SEG3, OLD_SYSTEM);
    faults.push('reject');
    await assert.rejects(s.archive(), /injected/);
    assert.deepEqual(await archivedNames(), [SEG1], 'nothing stored while the check could not run');
    assert.equal((await s.archive()).status, 'stored');
    assert.deepEqual(await archivedNames(), [SEG1, SEG3]);
  });
});
