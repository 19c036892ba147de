/**
 * Each recovery pre-check fires on the situation it guards against, exits non-zero with a clear
 * message, and leaves nothing behind: no data directory, nothing in the new cluster's archive.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pack } from 'tar-stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installedMajors } from '../../src/pg/binaries.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { archiveCurrentWal, backupOrigin, insertBatch, pgark, recoveryManifest, startOrigin, type Origin, type RecoveryManifestOptions } from './helpers.js';

let store: TestStore;
let storeRoot: string;
let origin: Origin;
let backupId: string;
let backupEnd: string;
const work = scratchDir('prechecks');

before(async () => {
  store = await startStore('file');
  storeRoot = fileURLToPath(store.destinationPath);
  origin = await startOrigin(store);
  backupId = await backupOrigin(origin);
  backupEnd = /end_time=(.*)/.exec(readFileSync(join(storeRoot, 'origin', 'base', backupId, 'backup.info'), 'utf8'))![1];
  await insertBatch(origin.pg, 1);
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  await origin?.pg.destroy();
  await store?.stop();
  work.cleanup();
});

let counter = 0;
/** Runs pgark restore on a manifest; returns the result and where it would have written. */
async function attempt(o: Partial<RecoveryManifestOptions>, args: string[] = [], prepare?: (pgdata: string) => void) {
  const name = o.name ?? `pre-${++counter}`;
  const file = join(work.path, `${name}.yaml`);
  writeFileSync(file, recoveryManifest(store, { sourceName: 'origin', ...o, name }));
  const pgdata = join(work.path, `${name}-data`);
  prepare?.(pgdata);
  const r = await pgark(['restore', '-f', file, '--pgdata', pgdata, ...args]);
  return { ...r, pgdata, newArchive: join(storeRoot, o.serverName ?? name) };
}

function assertNothingWritten(r: { pgdata: string; newArchive: string }, existingPgdata: string[] | undefined = undefined): void {
  if (existingPgdata) assert.deepEqual(readdirSync(r.pgdata).sort(), existingPgdata, 'data directory untouched');
  else assert.ok(!existsSync(r.pgdata), 'no data directory created');
  assert.ok(!existsSync(r.newArchive) || r.newArchive.endsWith('/origin'), 'nothing stored for the new cluster');
}

/** A copy of the backup (and optionally its WAL) under another server folder, with backup.info edited. */
function copyServer(to: string, opts: { withWal: boolean; edit?: (info: string) => string }): void {
  cpSync(join(storeRoot, 'origin', 'base', backupId), join(storeRoot, to, 'base', backupId), { recursive: true });
  if (opts.withWal) cpSync(join(storeRoot, 'origin', 'wals'), join(storeRoot, to, 'wals'), { recursive: true });
  const info = join(storeRoot, to, 'base', backupId, 'backup.info');
  if (opts.edit) writeFileSync(info, opts.edit(readFileSync(info, 'utf8')));
}

test('dry run prints the plan and writes nothing', async () => {
  const r = await attempt({}, ['--dry-run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout).plan;
  assert.equal(plan.backup.id, backupId);
  assert.ok(plan.backup.downloadBytes > 0);
  assert.equal(plan.wal.first, '000000010000000000000002');
  assert.ok(plan.recoverable.latest.lsn);
  assert.ok(plan.estimateSeconds >= 0);
  assertNothingWritten(r);
});

test('imageName of another major than the backup is refused, naming both', async () => {
  const r = await attempt({ imageName: 'ghcr.io/cloudnative-pg/postgresql:16' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /postgresql:16 is PostgreSQL 16, but backup \S+ was taken from PostgreSQL 15/);
  assertNothingWritten(r);
});

test('a backup whose major has no local binaries is refused', async () => {
  const missing = [9, 10, 11, 12, 13].find((m) => !installedMajors().includes(m))!;
  copyServer('old-major', { withWal: true, edit: (t) => t.replace(/^version=\d+$/m, `version=${missing}0012`) });
  const r = await attempt({ sourceServerName: 'old-major' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`is PostgreSQL ${missing}, but no local PostgreSQL ${missing} server binaries`));
  assertNothingWritten(r);
});

test('a data directory that is not empty is refused (Initial Bootstrap Only)', async () => {
  const r = await attempt({}, [], (pgdata) => {
    mkdirSync(pgdata);
    writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is not empty \(PG_VERSION\).*Initial Bootstrap Only/);
  assertNothingWritten(r, ['PG_VERSION']);
  assert.equal(readFileSync(join(r.pgdata, 'PG_VERSION'), 'utf8'), '15\n');
});

test('archiving into a serverName that already holds WAL is refused: Expected empty archive', async () => {
  const r = await attempt({ serverName: 'origin' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Expected empty archive/);
  assert.match(r.stderr, /serverName/);
  assertNothingWritten(r);
});

test('cnpg.io/skipEmptyWalArchiveCheck: enabled skips that check', async () => {
  const r = await attempt({ serverName: 'origin', annotations: { 'cnpg.io/skipEmptyWalArchiveCheck': 'enabled' } }, ['--dry-run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).plan.newArchive.emptyCheck, 'skipped by annotation');
});

test('targetTime before the end of the chosen backup is refused with the window', async () => {
  const before = new Date(new Date(backupEnd).getTime() - 60_000).toISOString();
  const r = await attempt({ recoveryTarget: { backupID: backupId, targetTime: before } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is before the end of backup/);
  assert.match(r.stderr, /recoverable window from this backup/);
  assertNothingWritten(r);
});

test('targetTime with no backup before it names the backups that exist', async () => {
  const r = await attempt({ recoveryTarget: { targetTime: '2001-01-01T00:00:00Z' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no DONE backup ended before targetTime/);
  assert.match(r.stderr, new RegExp(`${backupId}.* DONE`));
  assertNothingWritten(r);
});

test('targetTime after the last archived WAL is refused with the window', async () => {
  const r = await attempt({ recoveryTarget: { targetTime: new Date(Date.now() + 3_600_000).toISOString() } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /after the last archived WAL/);
  assert.match(r.stderr, /recoverable window/);
  assertNothingWritten(r);
});

test('targetTime within the second after the last archived WAL\'s stored time is accepted (stores keep whole seconds); a second later is refused', async () => {
  const dry = await attempt({}, ['--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  const latest = Date.parse(JSON.parse(dry.stdout).plan.recoverable.latest.time);
  const within = await attempt({ recoveryTarget: { targetTime: new Date(latest + 500).toISOString() } }, ['--dry-run']);
  assert.equal(within.code, 0, within.stderr);
  const later = await attempt({ recoveryTarget: { targetTime: new Date(latest + 1000).toISOString() } }, ['--dry-run']);
  assert.equal(later.code, 2);
  assert.match(later.stderr, /after the last archived WAL/);
  assertNothingWritten(later);
});

test('targetLSN beyond the continuous archive is refused', async () => {
  const r = await attempt({ recoveryTarget: { targetLSN: 'FF/0' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /beyond the end of the continuous WAL archive/);
  assertNothingWritten(r);
});

test("the backup's begin_wal missing from the archive is refused", async () => {
  copyServer('no-wal', { withWal: false });
  const r = await attempt({ sourceServerName: 'no-wal' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /lacks 000000010000000000000002, the first WAL of backup/);
  assertNothingWritten(r);
});

test('a backup whose tar escapes the data directory is refused and what was extracted is removed', async () => {
  copyServer('evil', { withWal: true });
  const base = join(storeRoot, 'evil', 'base', backupId);
  for (const f of readdirSync(base)) if (f.startsWith('data')) rmSync(join(base, f));
  const p = pack();
  p.entry({ name: 'PG_VERSION' }, '15\n');
  p.entry({ name: '../../escaped' }, 'owned');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(Buffer.from(c as Uint8Array));
  writeFileSync(join(base, 'data.tar'), Buffer.concat(chunks));
  const r = await attempt({ sourceServerName: 'evil' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /refusing tar entry "\.\.\/\.\.\/escaped".*path contains "\.\."/);
  assert.ok(!existsSync(r.pgdata), 'partly restored data directory removed');
  assert.ok(!existsSync(join(work.path, 'escaped')) && !existsSync(join(work.path, '..', 'escaped')));
});
