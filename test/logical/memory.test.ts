/**
 * The logical job's memory (issue 18: a logical dump under 128 MiB): real `pgark logical backup` and
 * restore.sh processes on a real PostgreSQL 15 and s3rver, each with a preloaded probe that records,
 * as the process exits, its own peak resident set (VmHWM) and the size of V8's young generation,
 * which V8 never gives back once grown; and, in a separate run (the loader's hooks thread has a heap
 * of its own), every module the CLI loads. The figures of docs/logical-backups.md "Memory" come
 * from bench/logical-memory.ts; this keeps the mechanisms behind them from regressing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { scratchDir } from '../harness/tmp.js';
import { modulePreload, tracedModules, TRACE_OUT } from '../harness/module-trace.js';
import { RESTORE_SH, createDataset, fingerprint, pgEnv, pgark, run, s3RestoreEnv } from './helpers.js';

const MiB = 1024 * 1024;
/** Issue 18's bar for the logical job. */
const BAR = 128 * MiB;
// Seven distinct md5s per row: text that gzip halves, so a 250,000-row table (~70 MB) makes a dump of several 5 MiB parts.
const PAYLOAD = [0, 1, 2, 3, 4, 5, 6].map((k) => `md5((g * 7 + ${k})::text)`).join(' || ');

let src: PgServer;
let dst: PgServer;
let s3: S3rver;
let tmp: { path: string; cleanup(): void };
let probe: string;

before(async () => {
  tmp = scratchDir('logical-memory');
  [src, dst, s3] = await Promise.all([startPostgres({ major: 15 }), startPostgres({ major: 15 }), startS3rver()]);
  await createDataset(src, 'mem', 1000);
  await src.query(`CREATE TABLE wide (id bigint PRIMARY KEY, payload text); INSERT INTO wide SELECT g, ${PAYLOAD} FROM generate_series(1, 250000) g`, [], 'mem');
  probe = join(tmp.path, 'probe.mjs');
  writeFileSync(
    probe,
    `import { appendFileSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
process.on('exit', () => {
  const youngGeneration = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
  const peakRss = Number(/^VmHWM:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  appendFileSync(process.env.PROBE_OUT, JSON.stringify({ youngGeneration, peakRss }) + '\\n');
});
`,
  );
});

after(async () => {
  await Promise.allSettled([src?.destroy(), dst?.destroy(), s3?.stop()]);
  tmp?.cleanup();
});

function backupEnv(out: string, preload: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...pgEnv(src),
    SCOPE: 'memory',
    LOGICAL_BACKUP_S3_BUCKET: s3.bucket,
    LOGICAL_BACKUP_S3_ENDPOINT: s3.endpoint,
    LOGICAL_BACKUP_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
    PROBE_OUT: out,
  };
}

function restoreEnv(out: string, key: string): NodeJS.ProcessEnv {
  return { ...s3RestoreEnv(s3, dst, 'mem', key), NODE_OPTIONS: `--import=${pathToFileURL(probe).href}`, PROBE_OUT: out };
}

function probed(out: string): { youngGeneration: number; peakRss: number } {
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1, `one node process, got ${lines.length} probe records`);
  return JSON.parse(lines[0]) as { youngGeneration: number; peakRss: number };
}

test('a dump and its restore through the real launchers stay under 128 MiB, with the young generation at its initial 2 MiB, and restore the data exactly', async () => {
  const backupOut = join(tmp.path, 'backup.json');
  const b = await pgark(['logical', 'backup', '--database', 'mem', '--json'], backupEnv(backupOut, probe));
  assert.equal(b.code, 0, b.stderr);
  const dump = (JSON.parse(b.stdout) as { dumps: { key: string; size: number }[] }).dumps[0];
  // Several parts, so the multipart path and its part buffers are what was measured.
  assert.ok(dump.size > 3 * 5 * MiB, `dump of ${dump.size} bytes`);
  const backup = probed(backupOut);
  assert.ok(backup.youngGeneration <= 2 * MiB, `backup young generation ${backup.youngGeneration / MiB} MiB`);
  assert.ok(backup.peakRss < BAR, `backup peak ${(backup.peakRss / MiB).toFixed(0)} MiB`);

  const restoreOut = join(tmp.path, 'restore.json');
  const r = await run(RESTORE_SH, [], restoreEnv(restoreOut, `spilo/${dump.key}`));
  assert.equal(r.code, 0, r.stderr);
  const restore = probed(restoreOut);
  assert.ok(restore.youngGeneration <= 2 * MiB, `restore young generation ${restore.youngGeneration / MiB} MiB`);
  assert.ok(restore.peakRss < BAR, `restore peak ${(restore.peakRss / MiB).toFixed(0)} MiB`);
  assert.deepEqual(await fingerprint(dst, 'mem'), await fingerprint(src, 'mem'));
});

test('the young-generation cap works when set at run time, where --max-semi-space-size does not', () => {
  // Allocates 3 million short-lived objects, some surviving a collection, and reports the young generation's size.
  const churn = (setup: string) =>
    Number(
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `${setup}
import { getHeapSpaceStatistics } from 'node:v8';
let keep = [];
for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 1000) keep = []; }
process.stdout.write(String(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));`,
        ],
        { encoding: 'utf8', cwd: process.cwd() },
      ).stdout,
    );
  const capped = churn(`import { capYoungGeneration } from '${pathToFileURL(join(process.cwd(), 'dist/src/util/gc.js')).href}'; capYoungGeneration();`);
  const flagAtRunTime = churn(`import { setFlagsFromString } from 'node:v8'; setFlagsFromString('--max-semi-space-size=1');`);
  assert.ok(capped > 0 && capped <= 2 * MiB, `capped: ${capped / MiB} MiB`);
  assert.ok(flagAtRunTime > 4 * MiB, `--max-semi-space-size at run time: ${flagAtRunTime / MiB} MiB (if V8 now honours it, util/gc.ts can use it instead)`);
});

test('the CLI loads the configuration layer (zod, yaml) neither to start nor for an unencrypted logical backup', async () => {
  const out = join(tmp.path, 'modules.txt');
  const b = await pgark(['logical', 'backup', '--database', 'postgres'], { ...backupEnv(out, probe), NODE_OPTIONS: modulePreload(tmp.path), [TRACE_OUT]: out });
  assert.equal(b.code, 0, b.stderr);
  const modules = tracedModules(out);
  // The run loaded the logical code, the S3 driver and the dump's modules: the trace saw the whole path.
  for (const loaded of ['/logical/dump', '/storage/s3', '/cli/main']) {
    assert.ok(modules.some((m) => new RegExp(`/src${loaded}\\.[jt]s$`).test(m)), `${loaded} was not traced`);
  }
  const config = modules.filter((m) => /\/src\/config\//.test(m) || /\/node_modules\/(zod|yaml)\//.test(m));
  assert.deepEqual(config, []);
});
