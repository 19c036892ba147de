/**
 * The daemon's gzip pushes compress at most INLINE_ENCODES (4) at once, whatever wal.maxParallel:
 * at maxParallel 8 look-ahead runs 16 pushes, and a push that opened its segment holds chunks and
 * deflate state while zlib's 4 threads serve others. A push opens its file only once it may
 * compress it, so the count of pg_wal segments open for reading at once is the bound, observed
 * through fs/promises' open (the real one, wrapped to count). Every segment still reaches the real
 * file:// store, and gunzips to its own bytes. The peak RSS this bounds is measured by the benches
 * (bench/wal-archive.ts, bench/barman-dropin.ts), not asserted here.
 */
import fsPromises, { type FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { readFileSync, renameSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { walKey } from '../../src/catalog/layout.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { ArchiveService } from '../../src/wal/archive-service.js';
import { ensureRuntimeDirs, walRuntime } from '../../src/wal/runtime.js';
import { WalTargetCache, type WalTarget } from '../../src/wal/target.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata } from './helpers.js';

const work = scratchDir('wal-encode-memory');
const realOpen = fsPromises.open;
after(() => {
  fsPromises.open = realOpen;
  syncBuiltinESMExports();
  work.cleanup();
});

/** Counts the files under `dir` open at once through fs/promises (what FileBody reads with). */
function watchOpens(dir: string): { max: () => number } {
  let open = 0;
  let max = 0;
  fsPromises.open = async (...args: Parameters<typeof realOpen>): Promise<FileHandle> => {
    const mine = String(args[0]).startsWith(dir);
    if (mine) max = Math.max(max, ++open);
    let handle: FileHandle;
    try {
      handle = await realOpen(...args);
    } catch (err) {
      if (mine) open--;
      throw err;
    }
    if (mine) {
      const close = handle.close.bind(handle);
      handle.close = () => close().finally(() => open--);
    }
    return handle;
  };
  syncBuiltinESMExports();
  return { max: () => max };
}

test('at maxParallel 8, 17 ready gzip segments: at most 4 are read at once, and every one is stored as gzip of its bytes', async () => {
  const d = fakePgdata(join(work.path, 'gzip'));
  const names = Array.from({ length: 17 }, (_, i) => `0000000100000000000000${(i + 1).toString(16).toUpperCase().padStart(2, '0')}`);
  const data = new Map(names.map((name) => [name, craftSegment(name)]));
  for (const [name, bytes] of data) d.addReady(name, bytes);
  const rt = walRuntime(d.pgdata);
  ensureRuntimeDirs(rt);
  const store = new FileObjectStore(join(work.path, 'store'), 'file://store');
  const target: WalTarget = { store, serverName: 'srv', compression: 'gzip', maxParallel: 8, skipEmptyCheck: true, description: 'test' };
  const service = new ArchiveService(rt, new WalTargetCache(async () => ({ fingerprint: 'test', open: async () => target })));
  const opens = watchOpens(d.walDir);

  // PostgreSQL asks for each in order; look-ahead starts up to 16 pushes with the first request.
  for (const name of names) {
    assert.equal((await service.archive(join(d.walDir, name), { files: [] })).status, 'stored');
    renameSync(join(d.walDir, 'archive_status', `${name}.ready`), join(d.walDir, 'archive_status', `${name}.done`));
  }
  while (service.busy) await new Promise((r) => setTimeout(r, 5));

  assert.ok(opens.max() >= 2, `look-ahead compressed segments side by side (at most ${opens.max()} open at once)`);
  assert.ok(opens.max() <= 4, `${opens.max()} segments were open for compression at once; the bound is 4`);
  for (const [name, bytes] of data) {
    const stored = readFileSync(join(store.root, walKey('srv', name, '.gz')));
    assert.ok(gunzipSync(stored).equals(bytes), `${name}: the stored object gunzips to the segment`);
  }
});
