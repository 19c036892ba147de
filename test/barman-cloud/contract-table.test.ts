/**
 * barman-cloud-cli-contract.md as a table: every argv shape CloudNativePG (1.24-1.30 in-tree,
 * main) and plugin-barman-cloud 0.x build for the drop-ins (§2.1-2.3, §5, §1.8), run by bare name
 * through PATH against s3rver (and the Azure rows against Azurite), with the exit code and output
 * each caller needs. Rows marked barman34 also run Debian's barman-cloud 3.4 with the same argv
 * and expect the same exit code. The CNPG instance manager and plugin cannot run here: the rows
 * follow their documented contract (the argv they build, the codes they read).
 *
 * One array of rows; other commands add theirs to CASES.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { barmanEnv as withBarmanFix } from '../harness/barman.js';
import { craftSegment, fakePgdata, type FakePgdata } from '../wal/helpers.js';
import { runDropin, stopDropinDaemons } from './helpers.js';

export interface Ctx {
  store: TestStore;
  /** CNPG's <prov> block, with --endpoint-url for S3. */
  prov: string[];
  /** --endpoint-url U when the store has one (CNPG puts it first in several shapes). */
  endpoint: string[];
  /** <prov> alone. */
  provider: string[];
  dest: string;
  env: Record<string, string>;
  /** A data directory with pg_wal/archive_status, the cwd of in-tree WAL calls. */
  pgdata: FakePgdata;
  /** CNPG's /controller/wal-restore-spool stand-in. */
  spool: string;
  scratch: string;
}

export interface ContractCase {
  /** Contract section and caller. */
  name: string;
  tool: string;
  argv(ctx: Ctx): string[];
  /** Default: the data directory (in-tree WAL calls run there). */
  cwd?(ctx: Ctx): string;
  env?(ctx: Ctx): Record<string, string>;
  setup?(ctx: Ctx): void | Promise<void>;
  code: number;
  /** Exactly this stdout (default: empty, as every WAL caller streams output to its log). */
  stdout?: string | RegExp;
  stderr?: RegExp;
  check?(ctx: Ctx, r: { stdout: string; stderr: string }): void | Promise<void>;
  /** Debian's barman-cloud 3.4 exits with the same code for this argv. */
  barman34?: boolean;
  /** Store kinds the row runs on (default s3 only). */
  kinds?: StoreKind[];
}

const SEG = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;
const BOTH: StoreKind[] = ['s3', 'azure-connection-string'];

/** Archives segment n for server via the drop-in, so restore rows have something to fetch. */
function archived(ctx: Ctx, server: string, n: number): Buffer {
  const data = craftSegment(SEG(n));
  const path = ctx.pgdata.addReady(SEG(n), data);
  const r = runDropin('barman-cloud-wal-archive', [...ctx.prov, ctx.dest, server, path], ctx.env, ctx.pgdata.pgdata);
  assert.equal(r.code, 0, r.stderr);
  return data;
}

export const CASES: ContractCase[] = [
  // §2.1 barman-cloud-wal-archive
  {
    name: '§2.1 in-tree requested WAL: every option CNPG builds, relative %p against the PGDATA cwd',
    tool: 'barman-cloud-wal-archive',
    setup: (c) => void c.pgdata.addReady(SEG(0x10), craftSegment(SEG(0x10))),
    argv: (c) => ['--gzip', '-e', 'AES256', '--read-timeout=60', ...c.endpoint, '--tags', 'env,prod', '--history-tags', 'keep,yes', ...c.provider, c.dest, 'arch', `pg_wal/${SEG(0x10)}`],
    code: 0,
    barman34: true,
  },
  {
    name: '§2.1 in-tree parallel file: absolute $PGDATA/pg_wal path; §1.4 --max-concurrency=1 and -vv as extra args',
    tool: 'barman-cloud-wal-archive',
    setup: (c) => void c.pgdata.addReady(SEG(0x11), craftSegment(SEG(0x11))),
    argv: (c) => ['--snappy', '--max-concurrency=1', '-vv', ...c.endpoint, ...c.provider, c.dest, 'arch', join(c.pgdata.walDir, SEG(0x11))],
    code: 0,
    kinds: BOTH,
  },
  ...(['--bzip2', '--lz4', '--xz', '--zstd'] as const).map(
    (flag, i): ContractCase => ({
      name: `§2.1 compression ${flag} (library >= 0.3.0 builds lz4/xz/zstd)`,
      tool: 'barman-cloud-wal-archive',
      setup: (c) => void c.pgdata.addReady(SEG(0x20 + i), craftSegment(SEG(0x20 + i))),
      argv: (c) => [flag, ...c.prov, c.dest, 'arch', `pg_wal/${SEG(0x20 + i)}`],
      code: 0,
    }),
  ),
  {
    name: '§2.1 timeline history file, a .partial from demotion and a backup label',
    tool: 'barman-cloud-wal-archive',
    setup: (c) => {
      c.pgdata.addReady('00000002.history', Buffer.from('1\t0/30000000\tno recovery target specified\n'));
      writeFileSync(join(c.pgdata.walDir, `${SEG(0x30)}.partial`), craftSegment(SEG(0x30)));
      writeFileSync(join(c.pgdata.walDir, `${SEG(0x30)}.00000028.backup`), 'START WAL LOCATION: 0/30000028\n');
    },
    argv: (c) => [...c.prov, '--history-tags', 'kind,history', '--cloud-provider', c.provider[1], c.dest, 'arch', 'pg_wal/00000002.history'],
    code: 0,
    check: (c) => {
      for (const f of [`${SEG(0x30)}.partial`, `${SEG(0x30)}.00000028.backup`]) {
        const r = runDropin('barman-cloud-wal-archive', [...c.prov, c.dest, 'arch', `pg_wal/${f}`], c.env, c.pgdata.pgdata);
        assert.equal(r.code, 0, r.stderr);
      }
    },
    kinds: BOTH,
  },
  {
    name: '§2.1 an invalid WAL name exits 3 with barman\'s message',
    tool: 'barman-cloud-wal-archive',
    setup: (c) => writeFileSync(join(c.pgdata.walDir, 'notawal'), 'x'),
    argv: (c) => [...c.prov, c.dest, 'arch', 'pg_wal/notawal'],
    code: 3,
    stderr: /ERROR: pg_wal\/notawal is an invalid name for a WAL file/,
    barman34: true,
  },
  {
    name: '§1.2 a typo in archiveAdditionalCommandArgs ("--read-timeout 60" as one element) exits 3',
    tool: 'barman-cloud-wal-archive',
    argv: (c) => ['--read-timeout 60', ...c.prov, c.dest, 'arch', `pg_wal/${SEG(0x10)}`],
    code: 3,
    stderr: /unrecognized arguments/,
    barman34: true,
  },
  {
    name: '§1.2 two compression flags conflict: exit 3',
    tool: 'barman-cloud-wal-archive',
    argv: (c) => ['--bzip2', '--gzip', ...c.prov, c.dest, 'arch', `pg_wal/${SEG(0x10)}`],
    code: 3,
    barman34: true,
  },
  {
    name: '§1.8 CNPG <= 1.24.3 / 1.25.1 capability check: --version, combined output matches barman-cloud.* (?P<Version>.*) with >= 3.4',
    tool: 'barman-cloud-wal-archive',
    argv: () => ['--version'],
    code: 0,
    stdout: /^barman-cloud-wal-archive 3\.(?:[4-9]|\d\d)\.\d+\n$/,
    barman34: true,
  },
  // §2.2 barman-cloud-check-wal-archive
  {
    name: '§2.2 before the first upload / in the recovery Job: empty archive -> 0',
    tool: 'barman-cloud-check-wal-archive',
    argv: (c) => [...c.endpoint, ...c.provider, c.dest, 'fresh-server'],
    code: 0,
    barman34: true,
    kinds: BOTH,
  },
  {
    name: '§2.2 an archive holding WAL -> 1 with the message CNPG documents',
    tool: 'barman-cloud-check-wal-archive',
    setup: (c) => void archived(c, 'used', 0x40),
    argv: (c) => [...c.endpoint, ...c.provider, c.dest, 'used'],
    code: 1,
    stderr: /ERROR: WAL archive check failed for server used: Expected empty archive\n/,
    barman34: true,
    kinds: BOTH,
  },
  {
    name: '§2.2 --timeline: only WAL on that timeline or later counts',
    tool: 'barman-cloud-check-wal-archive',
    argv: (c) => [...c.prov, '--timeline', '2', c.dest, 'used'],
    code: 0,
    check: (c) => {
      const r = runDropin('barman-cloud-check-wal-archive', [...c.prov, '--timeline=1', c.dest, 'used'], c.env);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /WAL archive check failed for server used: Found 1 file in WAL archive equal to or newer than timeline 1/);
    },
  },
  {
    name: "§2.2 CNPG e2e: --test against a bucket that does not exist, endpoint reachable -> 0",
    tool: 'barman-cloud-check-wal-archive',
    argv: (c) => [...c.provider, ...c.endpoint, 's3://not-evaluated/', 'cluster-example', '--test'],
    code: 0,
    barman34: true,
  },
  {
    name: '§2.2 endpoint unreachable -> 2',
    tool: 'barman-cloud-check-wal-archive',
    argv: (c) => [...c.provider, '--endpoint-url', 'http://127.0.0.1:9', c.dest, 'x'],
    env: () => ({ PGARK_STORAGE_MAX_ATTEMPTS: '1' }),
    code: 2,
    barman34: true,
  },
  // §2.3 barman-cloud-wal-restore
  {
    name: '§2.3.1 requested WAL (CNPG main, plugin): --endpoint-url first, extra args between server and operands, relative %p',
    tool: 'barman-cloud-wal-restore',
    setup: (c) => void archived(c, 'rest', 0x50),
    argv: (c) => [...c.endpoint, ...c.provider, c.dest, 'rest', '--read-timeout=60', SEG(0x50), 'pg_wal/RECOVERYXLOG'],
    code: 0,
    check: (c) => assert.ok(readFileSync(join(c.pgdata.walDir, 'RECOVERYXLOG')).equals(readFileSync(join(c.pgdata.walDir, SEG(0x50))))),
    barman34: true,
    kinds: BOTH,
  },
  {
    name: '§4.2 prefetch into <spool>/<name>.tmp: written there, renamed by the caller',
    tool: 'barman-cloud-wal-restore',
    setup: (c) => void archived(c, 'rest', 0x51),
    argv: (c) => [...c.endpoint, ...c.provider, c.dest, 'rest', SEG(0x51), join(c.spool, `${SEG(0x51)}.tmp`)],
    cwd: (c) => c.scratch,
    code: 0,
    check: (c) => assert.ok(readFileSync(join(c.spool, `${SEG(0x51)}.tmp`)).equals(readFileSync(join(c.pgdata.walDir, SEG(0x51))))),
    kinds: BOTH,
  },
  {
    name: '§4.2 a prefetch past the end of the archive: exit 1 (CNPG sets end-of-wal-stream), no file left',
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.endpoint, ...c.provider, c.dest, 'rest', SEG(0x5f), join(c.spool, `${SEG(0x5f)}.tmp`)],
    code: 1,
    check: (c) => assert.ok(!existsSync(join(c.spool, `${SEG(0x5f)}.tmp`))),
    barman34: true,
    kinds: BOTH,
  },
  {
    name: '§2.3.2 CNPG <= 1.30 bootstrap restore_command shape: [--endpoint-url U] <dest> <server> <prov> %f %p',
    tool: 'barman-cloud-wal-restore',
    setup: (c) => void archived(c, 'rest', 0x52),
    argv: (c) => [...c.endpoint, c.dest, 'rest', ...c.provider, SEG(0x52), 'pg_wal/RECOVERYXLOG'],
    code: 0,
    barman34: true,
  },
  {
    name: "§2.3.1 recovery Job's check of the backup's begin_wal into /controller/recovery/test.wal (absolute)",
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.prov, c.dest, 'rest', SEG(0x50), join(c.scratch, 'test.wal')],
    code: 0,
    check: (c) => assert.ok(existsSync(join(c.scratch, 'test.wal'))),
  },
  {
    name: '§2.3.1 --no-partial (3.11) is accepted',
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.prov, '--no-partial', c.dest, 'rest', SEG(0x50), 'pg_wal/RECOVERYXLOG'],
    code: 0,
  },
  {
    name: '§2.3 an invalid WAL name: exit 3 (ErrInvalidWALName)',
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.prov, c.dest, 'rest', 'RECOVERYXLOG', 'pg_wal/RECOVERYXLOG'],
    code: 3,
    stderr: /ERROR: RECOVERYXLOG is an invalid name for a WAL file/,
    barman34: true,
  },
  {
    name: '§1.2 a typo in restoreAdditionalCommandArgs surfaces as exit 3',
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.prov, c.dest, 'rest', '--read-timeout 60', SEG(0x50), 'pg_wal/RECOVERYXLOG'],
    code: 3,
    barman34: true,
  },
  {
    name: '§2.3 store unreachable: exit 2 (ErrConnectivity), never 1',
    tool: 'barman-cloud-wal-restore',
    argv: (c) => [...c.provider, '--endpoint-url', 'http://127.0.0.1:9', c.dest, 'rest', SEG(0x50), 'pg_wal/RECOVERYXLOG'],
    env: () => ({ PGARK_STORAGE_MAX_ATTEMPTS: '1', PGARK_WAL_NO_DAEMON: '1' }),
    code: 2,
  },
  {
    name: '§1.3 --cloud-provider google-cloud-storage: a clear refusal, exit 3',
    tool: 'barman-cloud-wal-restore',
    argv: () => ['--cloud-provider', 'google-cloud-storage', 'gs://bucket/path', 'rest', SEG(0x50), 'pg_wal/RECOVERYXLOG'],
    code: 3,
    stderr: /Google Cloud Storage is not supported by pgark/,
  },
];

for (const kind of ['s3', 'azure-connection-string'] as StoreKind[]) {
  describe(`contract table on ${kind}`, () => {
    const scratch = scratchDir(`bccontract-${kind}`);
    let ctx: Ctx;
    before(async () => {
      const store = await startStore(kind);
      const args = store.barman!.args;
      const at = args.indexOf('--endpoint-url');
      const endpoint = at >= 0 ? args.slice(at, at + 2) : [];
      const provider = args.filter((_, i) => i !== at && i !== at + 1);
      const spool = join(scratch.path, 'wal-restore-spool');
      mkdirSync(spool);
      ctx = { store, prov: args, endpoint, provider, dest: store.destinationPath, env: withBarmanFix(store.barman!.env), pgdata: fakePgdata(join(scratch.path, 'pg')), spool, scratch: scratch.path };
    });
    after(async () => {
      await stopDropinDaemons(ctx.pgdata.pgdata);
      await stopDropinDaemons(ctx.scratch);
      await ctx.store.stop();
      scratch.cleanup();
    });

    for (const row of CASES.filter((r) => (r.kinds ?? ['s3']).includes(kind))) {
      test(`${row.tool}: ${row.name}`, async () => {
        await row.setup?.(ctx);
        const argv = row.argv(ctx);
        const env = { ...ctx.env, ...row.env?.(ctx) };
        const cwd = row.cwd?.(ctx) ?? ctx.pgdata.pgdata;
        const r = runDropin(row.tool, argv, env, cwd);
        assert.equal(r.code, row.code, `argv ${JSON.stringify(argv)}\n${r.stderr}`);
        const stdout = row.stdout ?? '';
        if (typeof stdout === 'string') assert.equal(r.stdout, stdout);
        else assert.match(r.stdout, stdout);
        if (row.stderr) assert.match(r.stderr, row.stderr);
        // Every stderr line is barman's log format or argparse's usage/error, and under 1 MiB.
        for (const line of r.stderr.split('\n').filter(Boolean)) {
          assert.ok(line.length < 1024 * 1024);
          assert.match(line, /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL): |usage: |barman-cloud-[a-z-]+: error: |pgark wal-(archive|restore): )/, line);
        }
        await row.check?.(ctx, r);
        if (row.barman34) {
          const b = spawnSync(`/usr/bin/${row.tool}`, argv, { env: { ...process.env, ...env }, cwd, encoding: 'utf8' });
          assert.equal(b.status, row.code, `barman-cloud 3.4 exited ${b.status} for the same argv: ${b.stderr}`);
        }
      });
    }
  });
}
