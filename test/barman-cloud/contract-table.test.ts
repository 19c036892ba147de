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
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, type FakePgdata } from '../wal/helpers.js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { BARMAN_COMMANDS, BARMAN_COMPAT_VERSION } from '../../src/cli/barman-cloud/specs.js';
import { runDropin, stopDropinDaemons } from './helpers.js';
import { openObjectStore } from '../../src/storage/open.js';
import { listBackups } from '../../src/catalog/catalog.js';
import { backupIdAt, DAY, segments, writeBackup, writeWals, type SyntheticBackup } from '../catalog/synthetic.js';

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
  /** What archived() stored, by segment name. */
  sent: Map<string, Buffer>;
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

/**
 * Archives segment n for server via the drop-in, so restore rows have something to fetch. From a
 * data directory of that server's own: the daemon also stores the other .ready files it finds.
 */
function archived(ctx: Ctx, server: string, n: number): void {
  const data = craftSegment(SEG(n));
  const source = fakePgdata(join(ctx.scratch, `source-${server}`));
  const r = runDropin('barman-cloud-wal-archive', [...ctx.prov, ctx.dest, server, source.addReady(SEG(n), data)], ctx.env, source.pgdata);
  assert.equal(r.code, 0, r.stderr);
  ctx.sent.set(SEG(n), data);
}

/** Backups 100, 50 (FAILED), 3 and 120 days old, the 100-day one named backup-20240102030405, with their WAL. */
const NOW = Date.now();
const SYNTHETIC: SyntheticBackup[] = [
  { id: backupIdAt(new Date(NOW - 100 * DAY)), beginSeg: 2, endSeg: 2, endTime: new Date(NOW - 100 * DAY), name: 'backup-20240102030405' },
  { id: backupIdAt(new Date(NOW - 50 * DAY)), beginSeg: 4, endSeg: 4, endTime: new Date(NOW - 50 * DAY), status: 'FAILED' },
  { id: backupIdAt(new Date(NOW - 3 * DAY)), beginSeg: 6, endSeg: 6, endTime: new Date(NOW - 3 * DAY) },
  { id: backupIdAt(new Date(NOW - 120 * DAY)), beginSeg: 1, endSeg: 1, endTime: new Date(NOW - 120 * DAY) },
];

async function seedCatalog(ctx: Ctx, server: string): Promise<void> {
  const store = await openObjectStore(ctx.store.resolved(server));
  try {
    for (const b of SYNTHETIC) await writeBackup(store, server, b);
    await writeWals(store, server, segments(1, 1, 7), '.gz');
  } finally {
    await store.close();
  }
}

async function catalogOf(ctx: Ctx, server: string) {
  const store = await openObjectStore(ctx.store.resolved(server));
  try {
    return await listBackups(store, server);
  } finally {
    await store.close();
  }
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
    check: (c) => assert.ok(readFileSync(join(c.pgdata.walDir, 'RECOVERYXLOG')).equals(c.sent.get(SEG(0x50))!)),
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
    check: (c) => assert.ok(readFileSync(join(c.spool, `${SEG(0x51)}.tmp`)).equals(c.sent.get(SEG(0x51))!)),
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
  // §2.4-2.9 the backup and catalog commands (b2). Catalogs are synthetic backup.info files in barman 3.4's format.
  {
    name: '§2.5 show by name after a backup: --format json [--endpoint-url U] <prov> <dest> <server> backup-<ts>; {"cloud": ...} with CNPG\'s types',
    tool: 'barman-cloud-backup-show',
    kinds: BOTH,
    setup: (c) => seedCatalog(c, 'show'),
    argv: (c) => ['--format', 'json', ...c.endpoint, ...c.provider, c.dest, 'show', 'backup-20240102030405'],
    code: 0,
    stdout: /^\{"cloud": \{.*\}\}\n$/,
    check: (_c, r) => {
      const b = JSON.parse(r.stdout).cloud;
      assert.equal(b.backup_name, 'backup-20240102030405');
      assert.match(b.backup_id, /^\d{8}T\d{6}$/);
      assert.equal(typeof b.systemid, 'string');
      assert.equal(typeof b.timeline, 'number');
      for (const k of ['begin_time_iso', 'end_time_iso']) assert.match(b[k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/);
      for (const k of ['begin_time', 'end_time']) assert.match(b[k], /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
      for (const k of ['begin_wal', 'end_wal', 'begin_xlog', 'end_xlog']) assert.equal(typeof b[k], 'string');
      assert.ok(b.error === null || typeof b.error === 'string');
    },
    barman34: true,
  },
  {
    name: '§2.5 show of an unknown name: exit 4 (barman\'s ValueError), nothing on stdout',
    tool: 'barman-cloud-backup-show',
    setup: (c) => seedCatalog(c, 'show'),
    argv: (c) => ['--format', 'json', ...c.endpoint, ...c.provider, c.dest, 'show', 'backup-19990101000000'],
    code: 4,
    barman34: true,
  },
  {
    name: '§2.5 show of an id without backup.info: exit 1',
    tool: 'barman-cloud-backup-show',
    argv: (c) => ['--format', 'json', ...c.endpoint, ...c.provider, c.dest, 'show', '19990101T000000'],
    code: 1,
    barman34: true,
  },
  {
    name: '§2.6 list: --format json [--endpoint-url U] <prov> <dest> <server>; every status, sorted by id, CNPG\'s types',
    tool: 'barman-cloud-backup-list',
    kinds: BOTH,
    setup: (c) => seedCatalog(c, 'list'),
    argv: (c) => ['--format', 'json', ...c.endpoint, ...c.provider, c.dest, 'list'],
    code: 0,
    stdout: /^\{"backups_list": \[.*\]\}\n$/,
    check: (_c, r) => {
      const list = JSON.parse(r.stdout).backups_list as { backup_id: string; status: string; systemid: unknown; timeline: unknown }[];
      assert.deepEqual(list.map((b) => b.status), ['DONE', 'DONE', 'FAILED', 'DONE']);
      assert.deepEqual(list.map((b) => b.backup_id), list.map((b) => b.backup_id).sort());
      for (const b of list) assert.ok(typeof b.systemid === 'string' && typeof b.timeline === 'number');
    },
    barman34: true,
  },
  {
    name: '§2.6 list of a server without backups: exactly {"backups_list": []}',
    tool: 'barman-cloud-backup-list',
    kinds: BOTH,
    argv: (c) => ['--format', 'json', ...c.endpoint, ...c.provider, c.dest, 'nobackups'],
    code: 0,
    stdout: '{"backups_list": []}\n',
    barman34: true,
  },
  {
    name: '§2.6 list -t: connectivity only, exit 0',
    tool: 'barman-cloud-backup-list',
    argv: (c) => ['-t', '--format', 'json', ...c.prov, c.dest, 'list'],
    code: 0,
    barman34: true,
  },
  {
    name: '§2.7 retention as CNPG runs it: [--endpoint-url U] <prov> --retention-policy "RECOVERY WINDOW OF 30 DAYS" <dest> <server>; the backup older than the window\'s base goes',
    tool: 'barman-cloud-backup-delete',
    kinds: BOTH,
    setup: (c) => seedCatalog(c, 'retention'),
    argv: (c) => [...c.endpoint, ...c.provider, '--retention-policy', 'RECOVERY WINDOW OF 30 DAYS', c.dest, 'retention'],
    code: 0,
    check: async (c) => {
      const ids = (await catalogOf(c, 'retention')).backups.map((b) => `${b.backup_id} ${b.status}`);
      // The 100-day backup is the newest ending before the window: the base for recovering to its start, kept.
      assert.deepEqual(ids, [`${SYNTHETIC[0].id} DONE`, `${SYNTHETIC[1].id} FAILED`, `${SYNTHETIC[2].id} DONE`], 'only the 120-day backup deleted; FAILED ones are never retention\'s');
    },
    barman34: true,
  },
  {
    name: '§2.7 an invalid policy: exit 3, nothing deleted',
    tool: 'barman-cloud-backup-delete',
    setup: (c) => seedCatalog(c, 'badpolicy'),
    argv: (c) => [...c.prov, '--retention-policy', 'RECOVERY WINDOW OF 30 YEARS', c.dest, 'badpolicy'],
    code: 3,
    check: async (c) => assert.equal((await catalogOf(c, 'badpolicy')).backups.length, 4),
    barman34: true,
  },
  {
    name: '§1.2 delete: -b and -r together, or neither: exit 3',
    tool: 'barman-cloud-backup-delete',
    argv: (c) => [...c.prov, '-b', '20240101T000000', '-r', 'REDUNDANCY 1', c.dest, 'x'],
    code: 3,
    stderr: /not allowed with argument/,
    barman34: true,
  },
  {
    name: '§2.7 -b <id> --dry-run (3.x): lists what would go, deletes nothing',
    tool: 'barman-cloud-backup-delete',
    setup: (c) => seedCatalog(c, 'dry'),
    argv: (c) => [...c.prov, '-b', SYNTHETIC[0].id, '--dry-run', '--batch-size', '10', c.dest, 'dry'],
    code: 0,
    stdout: /^Skipping deletion of objects \[.*backup\.info'\] due to --dry-run option\n/,
    check: async (c) => assert.equal((await catalogOf(c, 'dry')).backups.length, 4),
  },
  {
    name: '§2.8 restore, in-tree order: [--endpoint-url U] <dest> <server> <backupID> <prov> --read-timeout=60 <PGDATA>; a missing backup is final (1), nothing created',
    tool: 'barman-cloud-restore',
    kinds: BOTH,
    argv: (c) => [...c.endpoint, c.dest, 'restore', '19990101T000000', ...c.provider, '--read-timeout=60', join(c.scratch, 'never-created')],
    code: 1,
    check: (c) => assert.ok(!existsSync(join(c.scratch, 'never-created'))),
    barman34: true,
  },
  {
    name: '§2.8 restore, plugin order: <prov> [--endpoint-url U] <dest> <server> <backupID> <PGDATA> into a non-empty PGDATA: final (1), untouched',
    tool: 'barman-cloud-restore',
    setup: async (c) => {
      await seedCatalog(c, 'restore2');
      mkdirSync(join(c.scratch, 'busy'), { recursive: true });
      writeFileSync(join(c.scratch, 'busy', 'PG_VERSION'), '15\n');
    },
    argv: (c) => [...c.provider, ...c.endpoint, c.dest, 'restore2', SYNTHETIC[2].id, join(c.scratch, 'busy')],
    code: 1,
    stderr: /not empty/,
    check: (c) => assert.equal(readFileSync(join(c.scratch, 'busy', 'PG_VERSION'), 'utf8'), '15\n'),
  },
  {
    name: '§2.8 a bad --tablespace rule: exit 3',
    tool: 'barman-cloud-restore',
    argv: (c) => [...c.prov, '--tablespace', 'no-colon', c.dest, 'restore', '19990101T000000', join(c.scratch, 'never-created')],
    code: 3,
  },
  {
    name: '§2.9 keep (unmerged barman-cloud PR shape): [--endpoint-url U] <prov> --target full <dest> <server> <backupName>, then --status',
    tool: 'barman-cloud-backup-keep',
    kinds: BOTH,
    setup: (c) => seedCatalog(c, 'keep'),
    argv: (c) => [...c.endpoint, ...c.provider, '--target', 'full', c.dest, 'keep', 'backup-20240102030405'],
    code: 0,
    check: (c) => {
      const r = runDropin('barman-cloud-backup-keep', [...c.prov, '--status', c.dest, 'keep', SYNTHETIC[0].id], c.env);
      assert.equal(r.stdout, 'Keep: full\n', r.stderr);
    },
    barman34: true,
  },
  {
    name: '§2.9 keep needs exactly one of --release, --status, --target: exit 3',
    tool: 'barman-cloud-backup-keep',
    argv: (c) => [...c.prov, '--release', '--status', c.dest, 'keep', '20240101T000000'],
    code: 3,
    barman34: true,
  },
  {
    name: '§2.4 backup: an unreachable PostgreSQL (PGHOST socket directory without a server) fails the backup, exit 1, nothing on stdout',
    tool: 'barman-cloud-backup',
    env: (c) => ({ PGHOST: join(c.scratch, 'no-socket'), PGPORT: '5432', TMPDIR: c.scratch }),
    argv: (c) => ['--user', 'postgres', '--name', 'backup-20240102030405', '--lz4', '--immediate-checkpoint', '--jobs', '2', '--min-chunk-size=5MB', '--tags', 'env,prod', ...c.endpoint, ...c.provider, c.dest, 'backup'],
    code: 1,
    stderr: /Cannot connect to PostgreSQL|cannot connect to PostgreSQL/,
  },
  {
    name: '§2.4 backup: a --name shaped like a backup id is an argv error, exit 3',
    tool: 'barman-cloud-backup',
    argv: (c) => ['--user', 'postgres', '--name', '20240102T030405', ...c.prov, c.dest, 'backup'],
    code: 3,
  },
  {
    name: '§1.2 backup: two compression flags, exit 3',
    tool: 'barman-cloud-backup',
    argv: (c) => ['--user', 'postgres', '--gzip', '--bzip2', ...c.prov, c.dest, 'backup'],
    code: 3,
    barman34: true,
  },
  {
    name: '§2.4 backup: --max-bandwidth is refused clearly (pgark does not throttle), exit 3',
    tool: 'barman-cloud-backup',
    argv: (c) => ['--user', 'postgres', '--max-bandwidth', '10MB', ...c.prov, c.dest, 'backup'],
    code: 3,
    stderr: /--max-bandwidth is not supported by pgark/,
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
      const provider = at >= 0 ? args.filter((_, i) => i !== at && i !== at + 1) : args;
      const spool = join(scratch.path, 'wal-restore-spool');
      mkdirSync(spool);
      ctx = { store, prov: args, endpoint, provider, dest: store.destinationPath, env: store.barman!.env, pgdata: fakePgdata(join(scratch.path, 'pg')), spool, scratch: scratch.path, sent: new Map() };
    });
    after(async () => {
      for (const d of [ctx.pgdata.pgdata, ctx.scratch, join(ctx.scratch, 'source-used', 'data'), join(ctx.scratch, 'source-rest', 'data')]) await stopDropinDaemons(d);
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

describe('pgark barman-cloud install DIR', () => {
  const scratch = scratchDir('bcinstall');
  after(() => scratch.cleanup());
  const install = (...args: string[]) => spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'pgark.js'), 'barman-cloud', 'install', ...args], { encoding: 'utf8' });

  test('links all nine names, which then run as barman-cloud; again changes nothing; a foreign file is replaced only with --force', () => {
    const dir = join(scratch.path, 'bin');
    const first = install(dir);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(readdirSync(dir).sort(), [...BARMAN_COMMANDS].sort());
    for (const name of BARMAN_COMMANDS) {
      const v = spawnSync(join(dir, name), ['--version'], { encoding: 'utf8', env: { ...process.env, PGARK_NODE: process.execPath } });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stdout, `${name} ${BARMAN_COMPAT_VERSION}\n`);
    }
    const again = install(dir);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.split('\n').filter((l) => l.startsWith('kept')).length, 9);

    const other = join(scratch.path, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'barman-cloud-wal-archive'), '#!/bin/sh\n# barman\n', { mode: 0o755 });
    const refused = install(other);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /barman-cloud-wal-archive exists and is not a pgark drop-in; nothing was changed/);
    assert.deepEqual(readdirSync(other), ['barman-cloud-wal-archive'], 'nothing else was linked');
    assert.equal(readFileSync(join(other, 'barman-cloud-wal-archive'), 'utf8'), '#!/bin/sh\n# barman\n');
    const forced = install(other, '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.ok(lstatSync(join(other, 'barman-cloud-wal-archive')).isSymbolicLink());
    assert.equal(readdirSync(other).length, 9);
  });
});
