/**
 * bin/pgark.js runs scripts/bundle.mjs's bundle only while it is current: a `tsc` after the
 * bundle (dist/src newer than dist/bundle/.built) or no bundle at all runs the compiled modules,
 * so a stale bundle never runs code the sources no longer have. And every module bin/pgark.js
 * can load exists in both forms after the build `npm test` ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { scratchDir } from '../harness/tmp.js';

const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'pgark.js');

/** program('entry', 'compiled path') pairs bin/pgark.js names. */
const programs = [...readFileSync(LAUNCHER, 'utf8').matchAll(/program\('([^']+)', '([^']+)'\)/g)].map(([, entry, compiled]) => ({ entry, compiled }));

test('every module bin/pgark.js loads is in the bundle and in dist/src', () => {
  assert.ok(programs.length >= 5, `found ${programs.length} program() calls`);
  for (const { entry, compiled } of programs) {
    assert.ok(existsSync(join(PACKAGE_ROOT, 'dist', 'bundle', `${entry}.js`)), `dist/bundle/${entry}.js`);
    assert.ok(existsSync(join(PACKAGE_ROOT, 'dist', 'src', compiled)), `dist/src/${compiled}`);
  }
  const built = join(PACKAGE_ROOT, 'dist', 'bundle', '.built');
  assert.ok(existsSync(built), 'npm test builds the bundle');
});

test('the bundle runs only while it is at least as new as dist/src', () => {
  const dir = scratchDir('bundle-choice');
  try {
    // A package of stubs: each form of the CLI entry says which it is.
    writeFileSync(join(dir.path, 'package.json'), '{"type":"module"}\n');
    mkdirSync(join(dir.path, 'bin'));
    copyFileSync(LAUNCHER, join(dir.path, 'bin', 'pgark.js'));
    const stub = (path: string, says: string) => {
      mkdirSync(dirname(join(dir.path, path)), { recursive: true });
      writeFileSync(join(dir.path, path), `export function main() { console.log(${JSON.stringify(says)}); }\n`);
    };
    stub('dist/src/cli/main.js', 'compiled');
    stub('dist/bundle/cli.js', 'bundled');
    const ran = () => {
      const r = spawnSync(process.execPath, [join(dir.path, 'bin', 'pgark.js'), 'check'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    const stamp = join(dir.path, 'dist', 'bundle', '.built');
    const compiled = join(dir.path, 'dist', 'src', 'cli', 'main.js');
    const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

    assert.equal(ran(), 'compiled', 'no .built stamp: no bundle');
    writeFileSync(stamp, 'now\n');
    at(compiled, 1_000_000);
    at(stamp, 1_000_010);
    assert.equal(ran(), 'bundled', 'bundle built after dist/src');
    at(compiled, 1_000_020);
    assert.equal(ran(), 'compiled', 'dist/src compiled after the bundle');
    rmSync(stamp);
    assert.equal(ran(), 'compiled', 'stamp removed');
  } finally {
    dir.cleanup();
  }
});
