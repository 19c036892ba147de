/**
 * `pgark restore --start` starts the WAL daemon while the data step runs (src/recovery/early-wal.ts):
 * a failed data step stops that daemon and leaves nothing behind, a backup's own copy of the
 * daemon's directory is kept out of the extraction, a good restore still replays and promotes, and
 * after a short data step the daemon's early history listing answers PostgreSQL's first probe.
 * Real PostgreSQL, a real file store, the real daemon and extraction.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { backupPrefix } from '../../src/catalog/layout.js';
import type { BackupObject } from '../../src/catalog/backup-objects.js';
import { keepOutRuntimeDir } from '../../src/recovery/early-wal.js';
import { RECOVERY_LOG } from '../../src/util/cnpg.js';
import { extractTar } from '../../src/recovery/extract.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from './helpers.js';

const SERVER = 'early';
let store: TestStore;
let origin: Origin;
let backupId: string;

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: SERVER });
  await insertBatch(origin.pg, 1, 2000);
  backupId = await backupOrigin(origin, ['--compression', 'none']);
  await insertBatch(origin.pg, 2);
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  await origin?.pg.destroy();
  await store?.stop();
});

/** PIDs of live WAL daemons serving `pgdata` (their command line names it). */
function daemonsOf(pgdata: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('daemon-main.js')) && argv.includes(pgdata)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('a failed data step under --start stops the WAL daemon it started and leaves nothing behind', async () => {
  const path = join(store.destinationPath.replace(/^file:\/\//, ''), backupPrefix(SERVER, backupId), 'data.tar');
  const original = readFileSync(path);
  const damaged = Buffer.from(original);
  damaged[Math.floor(original.length / 2)] ^= 0xff;
  writeFileSync(path, damaged);
  try {
    const manifest = recoveryManifest(store, { name: 'early-damaged', sourceName: SERVER, noBackup: true });
    const { result, recovered } = await restore(manifest, ['--start']);
    try {
      assert.equal(result.code, 1, `the restore must fail:\n${result.stderr}`);
      assert.match(result.stderr, /the stored object \S*\/data\.tar is damaged/);
      // Checked before destroy(), which would stop a daemon left behind.
      assert.deepEqual(daemonsOf(recovered.pgdata), [], 'no WAL daemon of the removed data directory runs on');
      assert.equal(existsSync(recovered.pgdata), false, `nothing is left: ${existsSync(recovered.pgdata) ? readdirSync(recovered.pgdata, { recursive: true }).join(', ') : ''}`);
    } finally {
      await recovered.destroy();
    }
  } finally {
    writeFileSync(path, original);
  }
});

test('--start: the WAL daemon starts during the data step, and the server replays to the end of the archive and promotes', async () => {
  const manifest = recoveryManifest(store, { name: 'early-good', sourceName: SERVER, noBackup: true });
  const { result, recovered } = await restore(manifest, ['--start']);
  try {
    assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}`);
    assert.match(result.stderr, /WAL daemon started during the data step, prefetching from [0-9A-F]{24}/);
    assert.deepEqual(await batches(recovered), [1, 2]);
  } finally {
    await recovered.destroy();
  }
});

test("a short data step: PostgreSQL's first history probe is answered from the early daemon's listing, no second listing, no Node start", async () => {
  const manifest = recoveryManifest(store, { name: 'early-fresh', sourceName: SERVER, noBackup: true });
  // debug: bin/pgark logs each restore_command it answers without Node into the server log.
  const { result, recovered } = await restore(manifest, ['--start'], ['env', 'PGARK_LOG_LEVEL=debug']);
  try {
    assert.equal(result.code, 0, `pgark restore failed:\n${result.stderr}`);
    assert.match(result.stderr, /WAL daemon started during the data step, prefetching from [0-9A-F]{24}; history listed \S+( \S+)? ago/);
    assert.doesNotMatch(result.stderr, /history listed again/);
    const log = readFileSync(join(recovered.pgdata, RECOVERY_LOG), 'utf8');
    const firstProbe = /pgark wal-restore: [0-9A-F]{8}\.history [^\n]*/.exec(log)?.[0];
    assert.match(firstProbe ?? '', /not found \(the daemon listed it absent\) by sh without Node/, `the first history probe: ${firstProbe}`);
    assert.deepEqual(await batches(recovered), [1, 2]);
  } finally {
    await recovered.destroy();
  }
});

test("a backup's own copy of the WAL daemon's directory is kept out of the extraction", async () => {
  const dir = scratchDir('early-wal-extract');
  try {
    const pgdata = join(dir.path, 'data');
    mkdirSync(join(pgdata, 'pgark-wal'), { recursive: true });
    writeFileSync(join(pgdata, 'pgark-wal', 'daemon.key'), 'the live daemon key');
    const p = pack();
    p.entry({ name: 'PG_VERSION' }, '15\n');
    p.entry({ name: 'pgark-wal/daemon.key' }, 'a stale key from the backed-up server');
    p.entry({ name: 'pgark-wal/restore-spool/000000010000000000000001' }, 'stale');
    p.entry({ name: 'pgark-walnut' }, 'not the daemon directory');
    p.finalize();
    const object = { key: 'x/data.tar', name: 'data.tar', size: 0, codec: 'none', encrypted: false, base: 'data', part: 0 } as BackupObject;
    const [kept] = keepOutRuntimeDir(pgdata, [object]);
    const stats = await extractTar(p as unknown as Readable, pgdata, 'data.tar', { accept: kept.accept });
    assert.equal(readFileSync(join(pgdata, 'pgark-wal', 'daemon.key'), 'utf8'), 'the live daemon key');
    assert.equal(existsSync(join(pgdata, 'pgark-wal', 'restore-spool')), false);
    assert.deepEqual([...stats.written.keys()].sort(), ['PG_VERSION', 'pgark-walnut']);
  } finally {
    dir.cleanup();
  }
});
