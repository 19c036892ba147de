#!/usr/bin/env node
// Runs every compiled test file with Node's own test runner, the slowest files first.
// PGARK_TEST_FILTER=substring narrows the files; PGARK_TEST_CONCURRENCY sets how many files run at once;
// PGARK_TEST_TAP=FILE also writes the TAP report (every test's duration, with the file of each failure) to FILE;
// PGARK_TEST_RECORD_DURATIONS=1 writes each file's measured seconds into test/durations.json;
// PGARK_TEST_FILE_TIMEOUT_S bounds each file (default 600 s); PGARK_TEST_TMPDIR names the scratch parent
// (default: a directory in /dev/shm when it has room, else $TMPDIR).
import { chmodSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Duplex } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';

const TEST_ROOT = resolve('dist/test');
const DURATIONS = 'test/durations.json';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** A test file's key in test/durations.json: its path under test/ without the extension. */
const keyOf = (file) => relative(TEST_ROOT, file).replace(/\.js$/, '');

const recorded = existsSync(DURATIONS) ? JSON.parse(readFileSync(DURATIONS, 'utf8')) : {};
// With files run a few at a time, a slow file started last leaves one slot idle until it ends; starting
// the slowest first keeps that tail short. A file not recorded yet goes first, as it may be slow.
const secondsOf = (file) => recorded[keyOf(file)] ?? Infinity;

const filter = process.env.PGARK_TEST_FILTER;
const files = walk(TEST_ROOT)
  .filter((f) => !filter || f.includes(filter))
  .sort((a, b) => secondsOf(b) - secondsOf(a) || a.localeCompare(b));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Three, on the 2 cores CI has: at two, 11-22 % of the cores' time was idle (tests waiting on servers and
// timers); three fill it (README "Test suite").
const concurrency = Number(process.env.PGARK_TEST_CONCURRENCY ?? 3);

/**
 * Where every test's scratch goes (clusters, stores, restores: all through os.tmpdir()). On a tmpfs an
 * fsync costs nothing and writes no journal, and the suite fsyncs a great deal (every restored file,
 * PostgreSQL's checkpoints, the stores' objects): recovery/verify took 86.7 CPU s and 75 s on ext4,
 * 75.9 and 58 s on /dev/shm (2026-12-07). What is tested is that pgark calls fsync (strace), never
 * that a disk kept the bytes, which no test here could show. The tmpfs holds the scratch in memory:
 * a whole run peaked at 4.3 GiB there (README "Test suite"), so it is taken only with twice
 * PEAK_SCRATCH free in it and in memory.
 */
const PEAK_SCRATCH = 5 * 1024 ** 3;
/** The scratch parent, and whether this run made it (and so removes it). */
function scratchParent() {
  if (process.env.PGARK_TEST_TMPDIR) return { dir: process.env.PGARK_TEST_TMPDIR, own: false };
  try {
    const fs = statfsSync('/dev/shm');
    // 0x01021994: TMPFS_MAGIC
    if (fs.type === 0x01021994 && fs.bavail * fs.bsize >= 2 * PEAK_SCRATCH && freemem() >= 2 * PEAK_SCRATCH) {
      // The run's own, removed after it: a tmpfs keeps what a killed test left until a reboot. Short, as
      // a socket path (a data directory's .s.PGSQL.<port>.lock) may hold only 107 bytes.
      const dir = mkdtempSync('/dev/shm/pgt-');
      chmodSync(dir, 0o1777);
      return { dir, own: true };
    }
  } catch {
    // no /dev/shm
  }
  return { dir: tmpdir(), own: false };
}
const scratch = scratchParent();
process.env.TMPDIR = scratch.dir;

// One initdb per PostgreSQL build and arguments for the whole run (test/harness/initdb-template.ts).
const templates = mkdtempSync(join(scratch.dir, 'pgark-initdb-templates-'));
chmodSync(templates, 0o755);
process.env.PGARK_TEST_INITDB_TEMPLATES = templates;
// Every Node process of the run (test files, pgark, the stores) would parse this variable's CA bundle as
// it starts: ~50 ms of CPU each (`node -e 0`: 0.10 user s with the machine's bundle, 0.045 without), for
// about 1800 starts a run. No test reaches a server it did not start, and a TLS test store's CA is passed
// to its clients explicitly.
delete process.env.NODE_EXTRA_CA_CERTS;
// Ctrl-C reaches the test files too; this process stays to remove the templates after them.
process.on('SIGINT', () => undefined);

// A file that hangs fails on its own, its process killed, instead of holding the run (and the report:
// files are reported in order, so every later file's results wait for it) until CI's own limit.
// The slowest file takes under three minutes here.
const timeout = Number(process.env.PGARK_TEST_FILE_TIMEOUT_S ?? 600) * 1000;

// node --test runs files in name order whatever order it is given; run() keeps this one.
const stream = run({ files, concurrency, timeout });
const measured = {};
const count = (event) => {
  if (event.nesting !== 0 || !event.file) return;
  measured[keyOf(event.file)] = (measured[keyOf(event.file)] ?? 0) + event.details.duration_ms / 1000;
};
stream.on('test:pass', count);
stream.on('test:fail', (event) => {
  process.exitCode = 1;
  count(event);
});
stream.pipe(new spec()).pipe(process.stdout);
if (process.env.PGARK_TEST_TAP) stream.pipe(Duplex.from(tap)).pipe(createWriteStream(process.env.PGARK_TEST_TAP));
stream.on('end', () => {
  rmSync(templates, { recursive: true, force: true });
  if (scratch.own) rmSync(scratch.dir, { recursive: true, force: true });
  if (process.env.PGARK_TEST_RECORD_DURATIONS) {
    const merged = { ...recorded };
    for (const [key, seconds] of Object.entries(measured)) merged[key] = Math.round(seconds * 10) / 10;
    const sorted = Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(DURATIONS, `${JSON.stringify(sorted, null, 2)}\n`);
  }
});
