/**
 * WAL archiving benchmark: one backlog of ready 16 MiB segments produced by a real PostgreSQL 15
 * (archive_command failing while a mixed load runs: pgbench plus md5 text that compresses about
 * 2:1), drained to s3rver by
 *   - pgark wal-archive            (resident daemon, wal.maxParallel segments at once)
 *   - barman-cloud-wal-archive 3.4 (one process per segment, as PostgreSQL calls it)
 *   - pgbackrest archive-push      (--archive-async, process-max = --max-parallel)
 * each called the way PostgreSQL calls archive_command: one call at a time, in order, the next
 * only after the previous exited 0 (.ready renamed .done then, as PostgreSQL does).
 *
 * Each comparison uses one transport for both tools: pgBackRest speaks only https to S3, so pgark
 * and pgBackRest drain to a TLS s3rver; pgark and barman-cloud drain to a plain-http s3rver (TLS in
 * s3rver's own Node process costs about a third of its throughput here, see bench/store-ceiling).
 * `--transport tls` runs everything, barman-cloud included, on the TLS s3rver instead.
 *
 *   node dist/bench/wal-archive.js [--segments 200] [--barman-segments 40] [--max-parallel 4] [--transport paired|tls]
 *                                  [--tools pgark,barman,pgbackrest] [--codecs none,zstd] [--before DIR]
 *
 * pgark's wal.maxParallel and pgBackRest's process-max are both --max-parallel: the comparison is
 * at equal parallelism, and the output says so. --before DIR (or BENCH_BEFORE=DIR: a built
 * checkout of another commit, e.g. `git worktree add /tmp/base main` + its node_modules + tsc)
 * adds tool `before`, that build's bin/pgark, run beside this one's on the same backlog and store
 * (first for every second codec), for an A/B in one run. pgark runs through its launcher on this
 * Node; to profile the launcher's client, point PGARK_NODE at a script that runs
 * `node --cpu-prof ... "$@"` (the daemon it starts runs on the client's own node binary).
 *
 * barman-cloud runs about one segment per second, so by default it drains only the first
 * --barman-segments of the same backlog (its rate is per segment and does not depend on the
 * backlog length); pass --barman-segments 200 for the full run. barman 3.4 has no zstd: its
 * compressed run uses gzip. --codecs also takes gzip, snappy, lz4, bzip2, xz: pgark alone runs those. Prints segments/s, ratios, pgark's peak memory, and the latency of an
 * archive_command call for a segment the daemon already pushed. "store CPU" is the share of one
 * core s3rver (one Node process) used during a drain: near 100% means the store, not the tool,
 * set the pace.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startS3rver, type S3rver } from '../test/harness/s3rver.js';
import { scratchDir } from '../test/harness/tmp.js';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { walRuntime } from '../src/wal/runtime.js';
import { CODECS } from '../src/codec/types.js';
import { pgbackrestS3RepoLines } from './pgbackrest.js';
import { childrenCpuSeconds, cpuSeconds, numberOption, option, procStatusKiB, storedBytes, wanConditions, wanOption } from './util.js';
import { commandArchiver, drain, produceBacklog, run, timedDrain, toolDataDir, type Backlog } from './wal-backlog.js';

// The npm bin, as archive_command runs it: sh answers for segments the daemon stored, else Node.
const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark');

const SEGMENTS = numberOption('segments', 200);
const BARMAN_SEGMENTS = Math.min(SEGMENTS, numberOption('barman-segments', 40));
const MAX_PARALLEL = numberOption('max-parallel', 4);
const SEG_SIZE = 16 * 1024 * 1024;
const TRANSPORT = option('transport') ?? 'paired';
const WAN = wanOption();
if (TRANSPORT !== 'paired' && TRANSPORT !== 'tls') throw new Error('--transport is paired or tls');
const BEFORE = option('before') ?? process.env.BENCH_BEFORE;
const TOOLS = [...(option('tools') ?? 'pgark,barman,pgbackrest').split(','), ...(BEFORE ? ['before'] : [])];
for (const t of TOOLS) if (!['pgark', 'before', 'barman', 'pgbackrest'].includes(t)) throw new Error(`--tools takes pgark,barman,pgbackrest, not "${t}"`);
const RUN_CODECS = (option('codecs') ?? 'none,zstd').split(',');
for (const c of RUN_CODECS) if (!(CODECS as readonly string[]).includes(c)) throw new Error(`--codecs takes ${CODECS.join(',')}, not "${c}"`);
/** The peers run against pgark's none and zstd only (barman-cloud with gzip, pgBackRest with zst for zstd). */
const PEER_CODECS = ['none', 'zstd'];

interface Result {
  tool: string;
  transport: 'tls' | 'http';
  compression: string;
  segments: number;
  seconds: number;
  ratio: number;
  /** Share of one core the store's process used while the tool drained. */
  storeBusy: number;
  note?: string;
}

const raw = (n: number) => n * SEG_SIZE;

function transportOf(s3: S3rver): 'tls' | 'http' {
  return s3.tls ? 'tls' : 'http';
}

/**
 * pgark (or, as tool `before`, the --before build) drains the backlog, then the latency of
 * archive_command for segments its daemon already pushed is measured.
 */
async function runPgark(tool: 'pgark' | 'before', s3: S3rver, work: string, backlog: Backlog, compression: string, extra: string[]): Promise<Result> {
  const segs = backlog.segments;
  const prefix = `${tool}-${compression}-${transportOf(s3)}`;
  const dir = join(work, prefix);
  const pgdata = toolDataDir(dir, backlog.pgdata, segs);
  const manifest = join(dir, 'cluster.yaml');
  writeFileSync(
    manifest,
    [
      'apiVersion: postgresql.cnpg.io/v1',
      'kind: Cluster',
      'metadata: {name: bench}',
      'spec:',
      '  backup:',
      '    barmanObjectStore:',
      `      destinationPath: s3://${s3.bucket}/${prefix}`,
      `      endpointURL: ${s3.endpoint}`,
      ...(s3.caPem ? ['      endpointCA: {name: s3, key: ca.crt}'] : []),
      '      s3Credentials:',
      '        accessKeyId: {name: s3, key: id}',
      '        secretAccessKey: {name: s3, key: secret}',
      '        region: {name: s3, key: region}',
      `      wal: {maxParallel: ${MAX_PARALLEL}${compression === 'none' ? '' : `, compression: ${compression}`}}`,
      '---',
      'apiVersion: v1',
      'kind: Secret',
      'metadata: {name: s3}',
      'stringData:',
      `  id: ${s3.accessKeyId}`,
      `  secret: ${s3.secretAccessKey}`,
      `  region: ${s3.region}`,
      ...(s3.caPem ? ['  ca.crt: |', ...s3.caPem.trim().split('\n').map((l) => `    ${l}`)] : []),
      '',
    ].join('\n'),
  );
  const env = { PGARK_WAL_DAEMON_IDLE_SECONDS: '600', PGARK_NODE: process.env.PGARK_NODE ?? process.execPath };
  const launcher = tool === 'before' ? join(BEFORE!, 'bin', 'pgark') : PGARK;
  const command = (p: string): [string, string[]] => [launcher, ['wal-archive', '-f', manifest, p]];
  const { seconds, storeBusy } = await timedDrain(s3, pgdata, segs, commandArchiver(pgdata, command, env));
  const pid = Number(readFileSync(walRuntime(pgdata).lockFile, 'utf8'));
  const rss = procStatusKiB(pid, 'VmHWM') / 1024;
  const daemonCpu = cpuSeconds(pid);
  const result: Result = {
    tool,
    transport: transportOf(s3),
    compression,
    segments: segs.length,
    seconds,
    storeBusy,
    ratio: raw(segs.length) / storedBytes(s3, prefix),
    note: `maxParallel ${MAX_PARALLEL}, daemon (pid ${pid}) peak RSS ${rss.toFixed(0)} MiB, daemon CPU ${((daemonCpu / segs.length) * 1000).toFixed(0)} ms/segment`,
  };

  // Latency of archive_command for segments the daemon already pushed ahead.
  const probe = ['0000000F0000000000000001', '0000000F0000000000000002', '0000000F0000000000000003', '0000000F0000000000000004', '0000000F0000000000000005', '0000000F0000000000000006'];
  for (const [i, name] of probe.entries()) {
    writeFileSync(join(pgdata, 'pg_wal', name), readFileSync(join(pgdata, 'pg_wal', segs[i])));
    writeFileSync(join(pgdata, 'pg_wal', 'archive_status', `${name}.ready`), '');
  }
  const archive = commandArchiver(pgdata, command, env);
  await drain(pgdata, probe.slice(0, 1), archive);
  const spool = walRuntime(pgdata).archiveSpool;
  while (!probe.slice(1).every((n) => existsSync(join(spool, n)))) await new Promise((r) => setTimeout(r, 50));
  const lat: number[] = [];
  // PostgreSQL calls archive_command for each of these; the launcher answers from the daemon's markers.
  for (const name of probe.slice(1)) lat.push((await drain(pgdata, [name], archive)) * 1000);
  extra.push(`${tool} ${compression} (${transportOf(s3)}): archive_command for an already-pushed segment: ${lat.map((l) => l.toFixed(0)).join(', ')} ms (max ${Math.max(...lat).toFixed(0)} ms); daemon peak RSS ${rss.toFixed(0)} MiB`);
  process.kill(pid, 'SIGTERM');
  rmSync(join(s3.dataDir, s3.bucket, prefix), { recursive: true, force: true });
  return result;
}

/** barman-cloud 3.4 on the first BARMAN_SEGMENTS of the backlog (no zstd in 3.4: gzip stands in). */
async function runBarman(s3: S3rver, work: string, backlog: Backlog, compression: string): Promise<Result> {
  const flag = compression === 'none' ? [] : ['--gzip'];
  const prefix = `barman-${compression}-${transportOf(s3)}`;
  const part = backlog.segments.slice(0, BARMAN_SEGMENTS);
  const pgdata = toolDataDir(join(work, prefix), backlog.pgdata, part);
  const env: NodeJS.ProcessEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_DEFAULT_REGION: s3.region };
  if (s3.caFile) env.AWS_CA_BUNDLE = s3.caFile;
  const { seconds, storeBusy } = await timedDrain(s3, pgdata, part, commandArchiver(pgdata, (p) => ['barman-cloud-wal-archive', [...flag, '--cloud-provider', 'aws-s3', '--endpoint-url', s3.endpoint, `s3://${s3.bucket}/${prefix}`, 'bench', p]], env));
  const result: Result = { tool: 'barman-cloud', transport: transportOf(s3), compression: compression === 'none' ? 'none' : 'gzip', segments: part.length, seconds, storeBusy, ratio: raw(part.length) / storedBytes(s3, prefix) };
  rmSync(join(s3.dataDir, s3.bucket, prefix), { recursive: true, force: true });
  return result;
}

/** pgBackRest's asynchronous archive-push (https only). */
async function runPgbackrest(s3: S3rver, work: string, backlog: Backlog, compression: string): Promise<Result> {
  const segs = backlog.segments;
  const prefix = `pgbackrest-${compression}`;
  const dir = join(work, prefix);
  const pgdata = toolDataDir(dir, backlog.pgdata, segs);
  const conf = join(dir, 'pgbackrest.conf');
  writeFileSync(
    conf,
    [
      ...pgbackrestS3RepoLines(s3, `/${prefix}`),
      'archive-async=y',
      `spool-path=${join(dir, 'spool')}`,
      `lock-path=${join(dir, 'lock')}`,
      `process-max=${MAX_PARALLEL}`,
      `compress-type=${compression === 'none' ? 'none' : 'zst'}`,
      'log-level-console=warn',
      'log-level-file=off',
      '[bench]',
      `pg1-path=${pgdata}`,
      '',
    ].join('\n'),
  );
  const created = await run('pgbackrest', [`--config=${conf}`, '--stanza=bench', '--no-online', 'stanza-create']);
  if (created.code !== 0) throw new Error(`pgbackrest stanza-create: ${created.stderr}`);
  const { seconds, storeBusy } = await timedDrain(s3, pgdata, segs, commandArchiver(pgdata, (p) => ['pgbackrest', [`--config=${conf}`, '--stanza=bench', 'archive-push', join(pgdata, p)]], {}));
  const result: Result = {
    tool: 'pgBackRest',
    transport: 'tls',
    compression: compression === 'none' ? 'none' : 'zst',
    segments: segs.length,
    seconds,
    storeBusy,
    ratio: raw(segs.length) / storedBytes(s3, `${prefix}/archive`),
    note: `archive-async, process-max=${MAX_PARALLEL}`,
  };
  rmSync(join(s3.dataDir, s3.bucket, prefix), { recursive: true, force: true });
  return result;
}

/** Segments of the backlog that the CPU reference below compresses. */
const REFERENCE_SEGMENTS = 8;

/**
 * What zstd level 3 costs on this backlog outside pgark, in CPU seconds per segment (children's
 * CPU, so the load and the link do not enter): the zstd program alone, and pgBackRest's own
 * archive-push (synchronous, to a local repository: its read, zst level 3, SHA-1 and file write).
 * The daemon's CPU per segment above reads against these.
 */
async function cpuReference(work: string, backlog: Backlog): Promise<string> {
  const segs = backlog.segments.slice(0, REFERENCE_SEGMENTS);
  const pgdata = toolDataDir(join(work, 'reference'), backlog.pgdata, segs);
  const perSegment = async (call: (segment: string) => Promise<{ code: number; stderr: string }>): Promise<number> => {
    const cpu0 = childrenCpuSeconds();
    for (const s of segs) {
      const r = await call(s);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    return ((childrenCpuSeconds() - cpu0) / segs.length) * 1000;
  };
  const zstd = await perSegment((s) => run('zstd', ['-3', '-q', '-c', join(pgdata, 'pg_wal', s)]));
  const conf = join(work, 'reference', 'pgbackrest.conf');
  writeFileSync(
    conf,
    ['[global]', `repo1-path=${join(work, 'reference', 'repo')}`, 'compress-type=zst', `lock-path=${join(work, 'reference', 'lock')}`, 'log-level-console=warn', 'log-level-file=off', '[bench]', `pg1-path=${pgdata}`, ''].join('\n'),
  );
  const created = await run('pgbackrest', [`--config=${conf}`, '--stanza=bench', '--no-online', 'stanza-create']);
  if (created.code !== 0) throw new Error(`pgbackrest stanza-create: ${created.stderr}`);
  const pgbackrest = await perSegment((s) => run('pgbackrest', [`--config=${conf}`, '--stanza=bench', 'archive-push', join(pgdata, 'pg_wal', s)], {}, pgdata));
  return `CPU per segment on the first ${segs.length} segments, zstd level 3: zstd program ${zstd.toFixed(0)} ms, pgBackRest archive-push (synchronous, local repository) ${pgbackrest.toFixed(0)} ms`;
}

async function main(): Promise<void> {
  const work = scratchDir('bench-wal');
  const tls = await startS3rver({ tls: true, front: false, wan: WAN });
  const http = TRANSPORT === 'paired' ? await startS3rver({ tls: false, front: false, wan: WAN }) : tls;
  const results: Result[] = [];
  let backlog: Backlog | undefined;
  const extra: string[] = [];
  try {
    process.stderr.write(`producing ${SEGMENTS} ready segments with PostgreSQL 15...\n`);
    backlog = await produceBacklog(SEGMENTS);
    for (const [i, compression] of RUN_CODECS.entries()) {
      // Which build drains first alternates by codec: the first drain after the backlog was produced ran slower.
      const builds = (i % 2 === 0 ? (['pgark', 'before'] as const) : (['before', 'pgark'] as const)).filter((t) => TOOLS.includes(t));
      for (const tool of builds) {
        if (TOOLS.includes('pgbackrest') || http === tls) results.push(await runPgark(tool, tls, work.path, backlog, compression, extra));
        if (http !== tls) results.push(await runPgark(tool, http, work.path, backlog, compression, extra));
      }
      if (!PEER_CODECS.includes(compression)) continue;
      if (TOOLS.includes('barman')) results.push(await runBarman(http, work.path, backlog, compression));
      if (TOOLS.includes('pgbackrest')) results.push(await runPgbackrest(tls, work.path, backlog, compression));
    }
    if (RUN_CODECS.includes('zstd')) extra.push(await cpuReference(work.path, backlog));
  } finally {
    await backlog?.cleanup();
    await tls.stop();
    if (http !== tls) await http.stop();
    work.cleanup();
  }

  const rate = (r: Result) => r.segments / r.seconds;
  console.log(`\nWAL archive benchmark: ${SEGMENTS} ready 16 MiB segments from PostgreSQL 15 (pgbench + md5 text), s3rver, ${new Date().toISOString()}`);
  console.log(wanConditions(WAN));
  console.log(`parallelism: pgark wal.maxParallel ${MAX_PARALLEL}${TOOLS.includes('pgbackrest') ? `, pgBackRest process-max ${MAX_PARALLEL}` : ''}${BEFORE ? `; before = ${BEFORE}` : ''}`);
  console.log('tool          transport compression  segments  seconds  segments/s  MB/s (raw)  ratio  store CPU  notes');
  for (const r of results) {
    console.log(
      `${r.tool.padEnd(13)} ${r.transport.padEnd(9)} ${r.compression.padEnd(12)} ${String(r.segments).padStart(8)} ${r.seconds.toFixed(1).padStart(8)} ${rate(r).toFixed(2).padStart(11)} ${((rate(r) * SEG_SIZE) / 1e6).toFixed(0).padStart(11)} ${r.ratio.toFixed(2).padStart(6)} ${`${(r.storeBusy * 100).toFixed(0)}%`.padStart(10)}  ${r.note ?? ''}`,
    );
  }
  const find = (tool: string, transport: string, compressions: string[]) => results.find((r) => r.tool === tool && r.transport === transport && compressions.includes(r.compression));
  for (const compression of RUN_CODECS) {
    const barman = find('barman-cloud', transportOf(http), [compression === 'none' ? 'none' : 'gzip']);
    const pbr = find('pgBackRest', 'tls', [compression === 'none' ? 'none' : 'zst']);
    const ratios: string[] = [];
    for (const tool of ['pgark', 'before']) {
      const vsBarman = find(tool, transportOf(http), [compression]);
      const vsPbr = find(tool, 'tls', [compression]);
      if (barman && vsBarman) ratios.push(`${tool} / barman-cloud (${barman.transport}) = ${(rate(vsBarman) / rate(barman)).toFixed(1)}x`);
      if (pbr && vsPbr) ratios.push(`${tool} / pgBackRest (tls, equal parallelism ${MAX_PARALLEL}) = ${(rate(vsPbr) / rate(pbr)).toFixed(2)}x`);
    }
    for (const transport of new Set([transportOf(tls), transportOf(http)])) {
      const now = find('pgark', transport, [compression]);
      const before = find('before', transport, [compression]);
      if (now && before) ratios.push(`pgark / before (${transport}) = ${(rate(now) / rate(before)).toFixed(2)}x`);
    }
    if (ratios.length) console.log(`${compression}: ${ratios.join(', ')}`);
  }
  for (const line of extra) console.log(line);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
