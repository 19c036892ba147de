/**
 * The option table (src/util/options.ts) is the one source of options and PGARK_* variables:
 * docs/options.md is what it generates, every variable the code or bin/pgark reads is in it, and
 * a variable whose value its type does not allow stops the command with exit 2 before anything is
 * done (these values were accepted, silently, before the table).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { optionsDoc } from '../../src/cli/options-doc.js';
import { pgarkVariables } from '../../src/util/options.js';
import { openObjectStore } from '../../src/storage/open.js';
import { walRuntime } from '../../src/wal/runtime.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from '../wal/helpers.js';
import { recoveryManifest } from '../recovery/helpers.js';

test('docs/options.md is what `npm run docs:options` writes from the table', () => {
  assert.equal(readFileSync(join(PACKAGE_ROOT, 'docs', 'options.md'), 'utf8'), optionsDoc(), 'run npm run docs:options and commit docs/options.md');
});

test('pgark --help ends with every PGARK_* variable; the WAL commands list only the flags their fast path takes', () => {
  const help = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'pgark.js'), '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  for (const { env } of pgarkVariables()) assert.match(help.stdout, new RegExp(`\\n  ${env} `), env);
  const archive = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'pgark.js'), 'wal-archive', '--help'], { encoding: 'utf8' });
  assert.match(archive.stdout, /--no-daemon/);
  // --json was listed, yet the fast path that archive_command runs refused it as an unknown option.
  assert.doesNotMatch(archive.stdout, /--json/);
});

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('every PGARK_* variable that src/ or bin/ reads is in the table', () => {
  const files = [...sources(join(PACKAGE_ROOT, 'src')), ...['pgark', 'pgark.js'].map((f) => join(PACKAGE_ROOT, 'bin', f))];
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  // PGARK_EXCLUDES and PGARK_FILTER are constants of src/backup, not variables.
  const constants = new Set([...text.matchAll(/const (PGARK_[A-Z0-9_]+)/g)].map((m) => m[1]));
  const used = new Set([...text.matchAll(/PGARK_[A-Z0-9_]+/g)].map((m) => m[0]).filter((n) => !constants.has(n)));
  const known = new Set(pgarkVariables().map((v) => v.env));
  assert.deepEqual([...used].filter((n) => !known.has(n)).sort(), []);
  assert.ok(used.has('PGARK_WAL_TIMEOUT_SECONDS') && used.has('PGARK_NODE'), 'the scan sees src/ and bin/pgark');
});

describe('a PGARK_* value its type does not allow: exit 2, naming the variable and what it expects, nothing done', () => {
  const SEG = '000000010000000000000001';
  let store: TestStore;
  const dir = scratchDir('options-env');
  const cfg = join(dir.path, 'cluster.yaml');
  const started: string[] = [];

  before(async () => {
    store = await startStore('file');
    writeFileSync(cfg, store.manifest({ clusterName: 'pg' }));
  });
  after(async () => {
    for (const d of started) await stopWalDaemon(d);
    await store?.stop();
    dir.cleanup();
  });

  const walCases: [string, string, RegExp][] = [
    ['PGARK_WAL_TIMEOUT_SECONDS', 'ten', /PGARK_WAL_TIMEOUT_SECONDS="ten" is not a whole number of at least 1/],
    ['PGARK_WAL_TIMEOUT_SECONDS', '0', /PGARK_WAL_TIMEOUT_SECONDS="0" is not a whole number of at least 1/],
    ['PGARK_WAL_TIMEOUT_SECONDS', '', /PGARK_WAL_TIMEOUT_SECONDS="" is not a whole number of at least 1/],
    ['PGARK_WAL_DAEMON_IDLE_SECONDS', '1.5', /PGARK_WAL_DAEMON_IDLE_SECONDS="1.5" is not a whole number of at least 1/],
    ['PGARK_WAL_NO_DAEMON', 'yes', /PGARK_WAL_NO_DAEMON="yes" is not 1 or 0/],
    ['PGARK_LOG_LEVEL', 'loud', /PGARK_LOG_LEVEL="loud" is not one of fatal, error, warn, info, debug, trace, silent/],
  ];
  for (const [variable, value, message] of walCases) {
    test(`wal-archive with ${variable}=${value}`, async () => {
      const d = fakePgdata(join(dir.path, `${variable}-${value}`));
      started.push(d.pgdata);
      const p = d.addReady(SEG, craftSegment(SEG));
      const r = await runPgark(['wal-archive', '-f', cfg, p], { cwd: d.pgdata, env: { [variable]: value } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(existsSync(walRuntime(d.pgdata).dir), false, 'no daemon started');
      const client = await openObjectStore(store.resolved('pg'));
      try {
        const stored: string[] = [];
        for await (const e of client.list('pg/wals/')) if (e.object) stored.push(e.object.key);
        assert.deepEqual(stored, [], 'nothing archived');
      } finally {
        await client.close();
      }
    });
  }

  test('the full CLI: PGARK_DEBUG=yes and PGARK_LOG_LEVEL=loud stop `schedule next` and `backup list`', async () => {
    const debug = await runPgark(['backup', 'list', '-f', cfg], { env: { PGARK_DEBUG: 'yes' } });
    assert.equal(debug.code, 2, debug.stderr);
    assert.match(debug.stderr, /pgark: PGARK_DEBUG="yes" is not 1 or 0/);
    assert.doesNotMatch(debug.stderr, /\n\s+at /, 'no stack trace for a refused PGARK_DEBUG');
    const level = await runPgark(['schedule', 'next', '-f', cfg], { env: { PGARK_LOG_LEVEL: 'loud' } });
    assert.equal(level.code, 2, level.stderr);
    assert.match(level.stderr, /PGARK_LOG_LEVEL="loud" is not one of/);
    assert.equal(level.stdout, '');
  });

  test('valid values still work: PGARK_DEBUG=1 prints the stack of an error, PGARK_WAL_TIMEOUT_SECONDS=30 archives', async () => {
    const debug = await runPgark(['backup', 'show', 'nope', '-f', cfg], { env: { PGARK_DEBUG: '1' } });
    assert.match(debug.stderr, /pgark: unknown backup "nope"/);
    assert.match(debug.stderr, /\n\s+at /);
    const d = fakePgdata(join(dir.path, 'valid'));
    started.push(d.pgdata);
    // Another segment than the refused cases': were one of them archived, this one would still be new.
    const seg = '000000010000000000000002';
    const r = await runPgark(['wal-archive', '-f', cfg, d.addReady(seg, craftSegment(seg))], { cwd: d.pgdata, env: { PGARK_WAL_TIMEOUT_SECONDS: '30' } });
    assert.equal(r.code, 0, r.stderr);
  });

  test('apply and restore refuse a --pgport that is not a port, before anything is created (apply wrote port = NaN before)', async () => {
    const manifest = join(dir.path, 'recovery.yaml');
    writeFileSync(manifest, recoveryManifest(store, { name: 'restored', sourceName: 'pg' }));
    for (const command of ['apply', 'restore']) {
      const pgdata = join(dir.path, `${command}-pgdata`);
      const r = await runPgark([command, '-f', manifest, '--pgdata', pgdata, '--pgport', 'abc', '--dry-run']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--pgport "abc" is not a whole number from 1 to 65535/, command);
      assert.equal(existsSync(pgdata), false);
    }
  });
});
