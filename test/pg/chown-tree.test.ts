/**
 * chownTree gives a restored data directory to the server's user while, under `restore --start`,
 * the WAL daemon already prefetches into PGDATA/pgark-wal and renames its .inflight files: a full
 * suite run once failed a restore with "ENOENT: ..., chown '.../restore-spool/<id>/<segment>.inflight'".
 * That interleaving cannot be timed from outside, so the walk's own fs calls (the real ones, wrapped)
 * remove entries at the worst moments: a file right after its directory was listed, and a directory
 * right after it was stat'ed, before its own listing. The chown is to the test's own uid and gid,
 * which needs no privilege.
 */
import fs, { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownTree } from '../../src/pg/local-server.js';
import { scratchDir } from '../harness/tmp.js';

const work = scratchDir('chown-tree');
const real = { readdirSync: fs.readdirSync, statSync: fs.statSync };
/** Puts these functions in node:fs (for its ES-module importers too); restore() puts the real ones back. */
const patchFs = (fns: Partial<typeof real>) => {
  Object.assign(fs, fns);
  syncBuiltinESMExports();
};
const restore = () => patchFs(real);
after(() => {
  restore();
  work.cleanup();
});

test('entries that vanish while chownTree walks are passed over; everything still there is walked', () => {
  const root = join(work.path, 'data');
  const spool = join(root, 'pgark-wal', 'restore-spool', 'abc');
  mkdirSync(spool, { recursive: true });
  const renamed = join(spool, '000000010000000000000015.inflight');
  writeFileSync(renamed, 'x');
  const gone = join(root, 'pgark-wal', 'gone-dir');
  mkdirSync(join(gone, 'inner'), { recursive: true });
  mkdirSync(join(root, 'base', '5'), { recursive: true });
  writeFileSync(join(root, 'base', '5', '16384'), 'page');

  const listed: string[] = [];
  patchFs({
    readdirSync: ((path: fs.PathLike, ...rest: unknown[]) => {
      const names = (real.readdirSync as (...a: unknown[]) => string[])(path, ...rest);
      listed.push(String(path));
      if (String(path) === spool) rmSync(renamed);
      return names;
    }) as typeof fs.readdirSync,
    statSync: ((path: fs.PathLike, ...rest: unknown[]) => {
      const st = (real.statSync as (...a: unknown[]) => fs.Stats)(path, ...rest);
      if (String(path) === gone) rmSync(gone, { recursive: true });
      return st;
    }) as typeof fs.statSync,
  });
  try {
    chownTree(root, { uid: process.getuid!(), gid: process.getgid!(), user: 'self' });
  } finally {
    restore();
  }

  assert.ok(!existsSync(renamed) && !existsSync(gone), 'both entries vanished during the walk');
  assert.ok(listed.includes(spool), 'the spool was listed before its file vanished');
  assert.ok(listed.includes(join(root, 'base', '5')), 'the rest of the tree was still walked');
  assert.equal(statSync(join(root, 'base', '5', '16384')).uid, process.getuid!());
});

test('a root that does not exist is still an error', () => {
  assert.throws(() => chownTree(join(work.path, 'missing'), { uid: process.getuid!(), gid: process.getgid!(), user: 'self' }), /ENOENT/);
});
