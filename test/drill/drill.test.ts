/**
 * `pgark drill` on real PostgreSQL 15 and s3rver, all cases sharing one archive (pgbench data, a
 * backup, then batches of rows each in its own archived segment): a healthy drill passes with its
 * RTO figures, recovery point and stored report, on a server that shares nothing with the source;
 * a segment missing in the middle fails the replay step quoting the server's FATAL line; a failing
 * probe fails the checks step; every run leaves the scratch directory empty and no WAL daemon
 * running; --history lists them.
 * Targets: a random target stays inside the WAL that replay is sure to reach (many draws, and real
 * drills at both ends of that range); a time and an LSN between two batches recover exactly the
 * batches before them; --keep leaves the directory with its server stopped; maxDiskBytes (as a
 * ScheduledDrill's resources pass it to runDrill) refuses before anything is downloaded.
 * Last, `pgark agent` runs a ScheduledDrill every 5 s and its /metrics move.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { walKey } from '../../src/catalog/layout.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { drawLsn, randomLsnRange, runDrill } from '../../src/drill/run.js';
import { formatLsn, parseLsn } from '../../src/pg/lsn.js';
import { parseSegmentName, segmentStartLsn } from '../../src/pg/wal-names.js';
import { summarizeWalArchive } from '../../src/wal/list.js';
import { clientTool } from '../../src/pg/binaries.js';
import { runPgTool } from '../../src/pg/local-server.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import type { DrillReport } from '../../src/drill/report.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK_LAUNCHER, walProcessPids } from '../harness/wal-processes.js';
import { archiveCurrentWal, backupOrigin, insertBatch, pgark, startOrigin, type Origin } from '../recovery/helpers.js';
import { freePort } from '../harness/ports.js';
import { startAgent, waitFor } from '../agent/helpers.js';
import type { AgentStatus } from '../../src/agent/status-cli.js';

const ACCOUNTS = 100_000;

describe('pgark drill (PostgreSQL 15, s3rver)', () => {
  let store: TestStore;
  let origin: Origin;
  let client: ObjectStore;
  let scratch: ReturnType<typeof scratchDir>;
  let files: ReturnType<typeof scratchDir>;
  /** A segment written after the backup with archived segments after it. */
  let middle: string;
  let checksFile: string;
  /** Taken after batch 2 was committed and archived, before batch 3 began. */
  let between: { time: string; lsn: string };

  before(async () => {
    store = await startStore('s3');
    origin = await startOrigin(store);
    const pg = origin.pg;
    const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-i', '-s', '1', '-q', 'postgres'], { who: pg.who });
    assert.equal(r.code, 0, r.stderr);
    await backupOrigin(origin);
    for (const batch of [1, 2, 3]) {
      const [{ name }] = await pg.query<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_insert_lsn()) AS name');
      await insertBatch(pg, batch);
      await archiveCurrentWal(pg);
      if (batch === 2) {
        middle = name;
        [between] = await pg.query<{ time: string; lsn: string }>(
          `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time, pg_current_wal_insert_lsn()::text AS lsn`,
        );
      }
    }
    client = await openObjectStore(store.resolved(origin.clusterName));
    scratch = scratchDir('drill-scratch');
    files = scratchDir('drill-files');
    checksFile = join(files.path, 'checks.yaml');
    // The last probe asks the drill's own server whether it is isolated from the source.
    writeFileSync(
      checksFile,
      `- name: accounts
  database: postgres
  sql: SELECT 1 FROM pgbench_accounts
  expect: {rows: ">= ${ACCOUNTS}"}
- name: newest row
  database: postgres
  sql: SELECT max(at) FROM rows
  expect: {maxAgeSeconds: 3600}
- name: isolated
  database: postgres
  sql: >-
    SELECT 1 WHERE current_setting('archive_mode') = 'off' AND current_setting('listen_addresses') = ''
    AND current_setting('port')::int <> ${pg.port} AND current_setting('primary_conninfo') = ''
    AND current_setting('unix_socket_directories') LIKE '%/pgark-drill-%/socket'
    AND NOT EXISTS (SELECT 1 FROM pg_replication_slots)
  expect: {nonEmpty: true}
`,
    );
  });

  after(async () => {
    await client?.close();
    await origin?.pg.destroy();
    await store?.stop();
    scratch?.cleanup();
    files?.cleanup();
  });

  async function drill(args: string[]): Promise<{ code: number; stderr: string; report: DrillReport & { reportKey: string | null } }> {
    const r = await pgark(['drill', '-f', origin.manifest, '--scratch', scratch.path, '--json', ...args]);
    let report: DrillReport & { reportKey: string | null };
    try {
      report = JSON.parse(r.stdout);
    } catch {
      throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    assert.deepEqual(readdirSync(scratch.path), [], 'the scratch directory is left empty');
    assert.deepEqual(walProcessPids(scratch.path, PGARK_LAUNCHER), [], 'no WAL daemon of the drill server is left running');
    return { code: r.code, stderr: r.stderr, report };
  }

  test('a healthy archive: the drill passes, measures every step, reaches a recovery point, stores its report', async () => {
    const pidBefore = readFileSync(join(origin.pg.pgdata, 'postmaster.pid'), 'utf8');
    const { code, stderr, report } = await drill(['--checks', checksFile]);
    assert.equal(code, 0, stderr);
    assert.equal(report.ok, true);
    assert.equal(report.version, 1);
    for (const step of ['plan', 'download', 'replay', 'promotion', 'checks'] as const) assert.ok(report.rto[step] > 0, `RTO of ${step} is measured: ${JSON.stringify(report.rto)}`);
    assert.ok(report.rto.total >= report.rto.download + report.rto.replay);
    assert.match(report.recoveryPoint!.lsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(Date.parse(report.recoveryPoint!.time!) > Date.parse(report.backup!.endTime!), 'replayed past the end of the backup');
    assert.ok(report.rpo.ageSeconds! >= 0 && report.rpo.newestWal, JSON.stringify(report.rpo));
    assert.ok(report.bytes.downloaded > 0 && report.bytes.walSegmentsReplayed >= 3, JSON.stringify(report.bytes));
    assert.deepEqual(
      report.checks.map((c) => [c.name, c.status]),
      [['connect', 'passed'], ['amcheck', 'passed'], ['accounts', 'passed'], ['newest row', 'passed'], ['isolated', 'passed']],
    );
    assert.match(report.checks[2].detail, new RegExp(`^${ACCOUNTS} row`));
    const stored = JSON.parse((await client.getBuffer(report.reportKey!)).toString('utf8')) as DrillReport;
    assert.equal(report.reportKey, `${origin.clusterName}/pgark/drills/${report.id}.json`);
    assert.equal(stored.ok, true);
    assert.equal(stored.recoveryPoint!.lsn, report.recoveryPoint!.lsn);
    assert.equal(readFileSync(join(origin.pg.pgdata, 'postmaster.pid'), 'utf8'), pidBefore, 'the source server still runs as before');
    assert.equal((await origin.pg.query('SELECT count(*)::int AS n FROM rows'))[0].n, 9);
  });

  test('a WAL segment missing in the middle: the replay step fails with the server FATAL line, nothing left behind', async () => {
    const key = walKey(origin.clusterName, middle);
    const intact = await client.getBuffer(key);
    await client.delete([key]);
    try {
      const { code, stderr, report } = await drill([]);
      assert.equal(code, 1, stderr);
      assert.equal(report.ok, false);
      assert.equal(report.failure!.step, 'replay');
      assert.match(report.failure!.message, new RegExp(`segment ${middle}`));
      assert.match(report.failure!.fatal!, /^FATAL: /);
      assert.equal(report.wal.gapSegments, 1);
      assert.match(stderr, /drill failed at step replay: /);
      assert.match(stderr, /server log: FATAL: /);
      assert.equal(report.steps.at(-1)!.ok, false);
      assert.equal(report.recoveryPoint, null);
    } finally {
      await client.put(key, intact);
    }
  });

  test('a probe that fails: the checks step fails, nothing left behind', async () => {
    const failing = join(files.path, 'failing.yaml');
    writeFileSync(failing, `- {database: postgres, sql: "SELECT 1 FROM pgbench_accounts", expect: {rows: ">= ${ACCOUNTS + 1}"}}\n`);
    const { code, stderr, report } = await drill(['--checks', failing]);
    assert.equal(code, 1, stderr);
    assert.equal(report.failure!.step, 'checks');
    assert.equal(report.failure!.fatal, null);
    assert.match(report.failure!.message, new RegExp(`${ACCOUNTS} row\\(s\\), expected >= ${ACCOUNTS + 1}`));
    assert.match(stderr, /drill failed at step checks/);
    assert.ok(report.recoveryPoint?.lsn, 'the restore itself reached its recovery point');
  });

  test('--history lists the stored drills, oldest first', async () => {
    const r = await pgark(['drill', '-f', origin.manifest, '--history', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as { ok: boolean; failedStep: string | null }[];
    assert.deepEqual(
      entries.map((e) => [e.ok, e.failedStep]),
      [[true, null], [false, 'replay'], [false, 'checks']],
    );
  });

  /** A probe that passes only when the restored `rows` holds exactly these batches. */
  function batchesProbe(name: string, expected: number[]): string {
    const file = join(files.path, `${name}.yaml`);
    writeFileSync(
      file,
      `- name: batches {${expected.join(',')}}\n  database: postgres\n  sql: "SELECT 1 WHERE (SELECT array_agg(DISTINCT batch ORDER BY batch) FROM rows)::text = '{${expected.join(',')}}'"\n  expect: {nonEmpty: true}\n`,
    );
    return file;
  }

  async function randomRange() {
    const [backup] = (await listBackups(client, origin.clusterName)).backups;
    const summary = await summarizeWalArchive(client, origin.clusterName);
    const newest = summary.timelines.at(-1)!.lastSegment;
    return { backup, newest, range: randomLsnRange(parseLsn(backup.end_xlog!), newest, backup.xlog_segment_size!)! };
  }

  test('random targets: every draw lies after the backup end and before the newest archived segment, spread over that range', async () => {
    const { backup, newest, range } = await randomRange();
    assert.equal(range.after, parseLsn(backup.end_xlog!));
    assert.equal(range.before, segmentStartLsn(parseSegmentName(newest)));
    // mulberry32: a fixed seed, so a failure names its draw.
    let seed = 16;
    const seeded = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const draws = Array.from({ length: 2000 }, () => drawLsn(range, seeded));
    for (const lsn of draws) assert.ok(lsn > range.after && lsn < range.before, `${formatLsn(lsn)} outside ${formatLsn(range.after)} .. ${formatLsn(range.before)}`);
    const middle = range.after + (range.before - range.after) / 2n;
    const below = draws.filter((l) => l < middle).length;
    assert.ok(below > 800 && below < 1200, `${below} of 2000 draws in the lower half`);
    assert.equal(drawLsn(range, () => 0), range.after + 1n);
    assert.equal(drawLsn(range, () => 1 - Number.EPSILON / 2), range.before - 1n);
    assert.equal(randomLsnRange(range.before - 1n, newest, backup.xlog_segment_size!), undefined, 'no LSN strictly between: no range');
  });

  for (const [end, draw] of [['lowest', () => 0], ['highest', () => 1 - Number.EPSILON / 2]] as const) {
    test(`a random target at the ${end} LSN of its range: the drill passes and replays to it`, async () => {
      const { range } = await randomRange();
      const lines: string[] = [];
      const { report } = await runDrill(
        { files: [origin.manifest], target: 'random', checks: [], scratch: scratch.path, progress: { step: (m) => lines.push(m) } },
        draw,
      );
      assert.equal(report.ok, true, JSON.stringify(report.failure));
      assert.equal(report.target.lsn, formatLsn(draw() === 0 ? range.after + 1n : range.before - 1n));
      assert.match(report.target.reason!, /^uniform over the WAL between the end of backup .* and the start of the newest archived segment /);
      assert.match(report.target.description, new RegExp(`${report.target.lsn}`));
      assert.ok(lines.some((l) => l.startsWith(`random target: LSN ${report.target.lsn}, uniform over the WAL`)), lines.join('\n'));
      assert.ok(parseLsn(report.recoveryPoint!.lsn!) >= parseLsn(report.target.lsn!), `replayed to ${report.recoveryPoint!.lsn}, target ${report.target.lsn}`);
      assert.deepEqual(readdirSync(scratch.path), []);
    });
  }

  test('a TIME target between two batches: the rows before it are restored, the ones after are not', async () => {
    const { code, stderr, report } = await drill(['--target', between.time, '--checks', batchesProbe('time', [1, 2])]);
    assert.equal(code, 0, stderr);
    assert.equal(report.target.time, between.time);
    assert.match(report.target.description, /^time /);
    assert.deepEqual(report.checks.at(-1)!.status, 'passed');
    assert.ok(Date.parse(report.recoveryPoint!.time!) <= Date.parse(between.time), `${report.recoveryPoint!.time} after ${between.time}`);
  });

  test('an LSN target between two batches with --keep: exactly the batches before it, directory kept with its server stopped', async () => {
    const keepDir = join(files.path, 'kept');
    mkdirSync(keepDir);
    const r = await pgark(['drill', '-f', origin.manifest, '--scratch', keepDir, '--target', between.lsn, '--keep', '--checks', batchesProbe('lsn', [1, 2])]);
    assert.equal(r.code, 0, r.stderr);
    const [dir] = readdirSync(keepDir);
    const kept = join(keepDir, dir);
    assert.match(r.stdout, new RegExp(`^Target: +${between.lsn} \\(LSN ${between.lsn} \\(inclusive\\)\\)$`, 'm'));
    assert.match(r.stdout, /^Check: +batches \{1,2\} \(postgres\): passed/m);
    assert.match(r.stdout, new RegExp(`^Scratch: +kept in ${kept}$`, 'm'));
    assert.match(r.stderr, new RegExp(`kept the restored copy in ${kept}, server stopped; start it with pg_ctl -D ${join(kept, 'data')} start`));
    assert.ok(existsSync(join(kept, 'data', 'PG_VERSION')), 'the restored data directory is kept');
    assert.equal(existsSync(join(kept, 'data', 'postmaster.pid')), false, 'its server is stopped');
    rmSync(keepDir, { recursive: true, force: true });
  });

  test('maxDiskBytes below the backup size (a ScheduledDrill resources limit): refused in the plan step, nothing downloaded', async () => {
    const { report } = await runDrill({ files: [origin.manifest], target: 'latest', checks: [], scratch: scratch.path, maxDiskBytes: 1, progress: { step() {} } });
    assert.equal(report.ok, false);
    assert.equal(report.failure!.step, 'plan');
    assert.match(report.failure!.message, /^backup \S+ restores \d+ bytes, more than resources\.maxDiskBytes \(1\)$/);
    assert.deepEqual(report.steps.map((s) => s.step), ['plan']);
    assert.equal(report.bytes.downloaded, 0);
    assert.equal(report.scratch.dir, null, 'no scratch directory was made');
    assert.deepEqual(readdirSync(scratch.path), []);
  });

  test('a checks file with a mistake: exit 2 at file:line:column, no drill run', async () => {
    const bad = join(files.path, 'bad.yaml');
    writeFileSync(bad, '- database: postgres\n  sql: SELECT 1\n  expect: {rows: "at least 3"}\n');
    const r = await pgark(['drill', '-f', origin.manifest, '--scratch', scratch.path, '--checks', bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${bad}:3:\\d+: \\[0\\]\\.expect\\.rows|${bad}:3:\\d+: 0\\.expect\\.rows`));
    assert.match(r.stderr, /such as ">= 1000"/);
    assert.deepEqual(readdirSync(scratch.path), []);
  });

  test('the agent runs a ScheduledDrill every 5 s: /metrics moves, /status shows the drills, shutdown leaves nothing', async () => {
    const dir = join(files.path, 'agent-manifests');
    const { copyFileSync } = await import('node:fs');
    mkdirSync(dir);
    copyFileSync(origin.manifest, join(dir, 'cluster.yaml'));
    writeFileSync(
      join(dir, 'drill.yaml'),
      `apiVersion: pgark.io/v1
kind: ScheduledDrill
metadata: {name: often}
spec:
  cluster: {name: ${origin.clusterName}}
  schedule: "*/5 * * * * *"
  target: latest
  resources: {scratchDir: ${scratch.path}}
  checks:
    - {database: postgres, sql: "SELECT 1 FROM pgbench_accounts", expect: {rows: ">= ${ACCOUNTS}"}}
`,
    );
    const port = await freePort();
    const agent = startAgent(['-f', dir, '--state-dir', join(files.path, 'agent-state')], { port, env: { PGDATA: '' } });
    const metric = async (line: RegExp): Promise<number | undefined> => {
      const text = await (await fetch(`${agent.url}/metrics`)).text();
      const m = line.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const success = new RegExp(`^pgark_drill_last_success_timestamp\\{cluster="${origin.clusterName}"\\} (\\S+)$`, 'm');
    try {
      const first = await waitFor('a first successful drill', () => metric(success), 240_000, agent);
      const second = await waitFor('a later successful drill', async () => {
        const v = await metric(success);
        return v !== undefined && v > first ? v : undefined;
      }, 240_000, agent);
      assert.ok(second > first);
      const rto = await metric(new RegExp(`^pgark_drill_rto_seconds\\{cluster="${origin.clusterName}",step="total"\\} (\\S+)$`, 'm'));
      assert.ok(rto! > 0, `total RTO gauge: ${rto}`);
      assert.equal(await metric(new RegExp(`^pgark_drill_last_status\\{cluster="${origin.clusterName}"\\} (\\S+)$`, 'm')), 1);
      assert.equal(await metric(new RegExp(`^pgark_wal_gap_segments\\{cluster="${origin.clusterName}"\\} (\\S+)$`, 'm')), 0);
      assert.ok((await metric(new RegExp(`^pgark_recoverability_window_seconds\\{cluster="${origin.clusterName}"\\} (\\S+)$`, 'm')))! > 0);
      const status = (await (await fetch(`${agent.url}/status`)).json()) as AgentStatus;
      assert.equal(status.scheduledDrills[0].name, 'often');
      assert.ok(status.drills.filter((d) => d.phase === 'completed').length >= 2, JSON.stringify(status.drills));
      assert.ok(status.drills.every((d) => d.phase !== 'failed'), JSON.stringify(status.drills));
    } finally {
      agent.proc.kill('SIGTERM');
      const exit = await agent.exited;
      assert.equal(exit.code, 0, agent.stderr().slice(-3000));
    }
    assert.deepEqual(readdirSync(scratch.path), [], 'a drill running at shutdown was stopped and removed');
  });
});
