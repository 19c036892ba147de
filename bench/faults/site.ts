/**
 * What every cell of the fault matrix stands on: one real PostgreSQL archiving with the pgark CLI
 * (the sh launcher, as PostgreSQL runs it) into a test store, optionally through the HTTP fault
 * proxy; the CLI run as a child process with a deadline; and the checks that turn a trial into
 * counts (archive vs pg_wal, DONE backups vs their data.tar and backup_manifest, restores vs the
 * origin's data).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import tar from 'tar-stream';
import { clientTool } from '../../src/pg/binaries.js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { runPgTool, serverIdentity } from '../../src/pg/local-server.js';
import { openObjectStore } from '../../src/storage/open.js';
import { decompressBuffer, decompressStream, splitCodecSuffix } from '../../src/codec/index.js';
import { listBackups } from '../../src/catalog/catalog.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startPostgres, type PgServer } from '../../test/harness/postgres.js';
import { startStore, type StoreKind, type StoreOptions, type TestStore } from '../../test/harness/stores.js';
import { startHttpFaultProxy, type HttpFaultProxy } from '../../test/harness/http-faults.js';
import { scratchDir } from '../../test/harness/tmp.js';
import { freePort } from '../../test/harness/ports.js';
import { recoveryManifest } from '../../test/recovery/helpers.js';
import { count, type Tally } from './tally.js';

export const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'pgark');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The runner killed it at the deadline. */
  timedOut: boolean;
}

export interface CliOptions {
  env?: Record<string, string>;
  /** Kill -9 after this long and report timedOut (the "stuck" column). */
  deadlineMs?: number;
  /** Kill -9 after this long as the fault itself (not counted as stuck). */
  killAfterMs?: number;
  /** Run as the PostgreSQL OS user (backups read PGDATA, restores write it). */
  asServerUser?: boolean;
}

/** Runs bin/pgark as a user would; never throws on a non-zero exit. */
export function pgark(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const who = opts.asServerUser ? serverIdentity() : undefined;
  return new Promise((resolve, reject) => {
    const child = spawn(LAUNCHER, args, {
      env: { ...process.env, PGARK_NODE: process.execPath, PGARK_LOG_LEVEL: 'warn', ...opts.env },
      cwd: '/tmp',
      uid: who?.uid,
      gid: who?.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-200_000)));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-200_000)));
    const timers: NodeJS.Timeout[] = [];
    if (opts.deadlineMs !== undefined)
      timers.push(
        setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.deadlineMs),
      );
    if (opts.killAfterMs !== undefined) timers.push(setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Counts a Secret value that shows up in a command's output. */
export function checkSecrets(t: Tally, trial: number, secrets: string[], r: Pick<CliResult, 'stdout' | 'stderr'>, what: string): void {
  const out = r.stdout + r.stderr;
  for (const s of secrets) if (s.length >= 6 && out.includes(s)) count(t, 'secretLeaks', trial, `${what} printed a Secret value`);
}

/** Counts a command the runner had to kill. */
export function checkStuck(t: Tally, trial: number, r: CliResult, what: string): void {
  if (r.timedOut) count(t, 'stuck', trial, `${what} still running at its deadline; stderr: ${r.stderr.slice(-300)}`);
}

/** The servers shared by all cells: one s3rver and one Azurite, each cell under its own prefix. */
export type SharedServers = Pick<StoreOptions, 's3rver' | 'azurite'>;

export interface SiteOptions {
  kind: StoreKind;
  servers: SharedServers;
  /** Put the HTTP fault proxy between pgark and the store. */
  proxy?: boolean;
  walCompression?: string;
  dataCompression?: string;
  /** Extra barmanObjectStore fields. */
  objectStore?: Record<string, unknown>;
  /** Environment for archive_command (e.g. PGARK_STORAGE_MAX_ATTEMPTS). */
  archiveEnv?: Record<string, string>;
  /** Credentials come from this --secrets-dir (Kubernetes volume layout) instead of a Secret in the manifest. */
  secretsDir?: string;
}

/** What pg_stat_archiver and archive_status said at the last archive check. */
interface ArchiverSeen {
  archived: number;
  failed: number;
  /** Segments and history files with a .done (PostgreSQL keeps them: wal_keep_size is larger than any run). */
  done: Set<string>;
  /** Backup history files in the store (PostgreSQL removes their .done at the next backup). */
  backupFiles: Set<string>;
}

export interface Site {
  store: TestStore;
  pg: PgServer;
  proxy?: HttpFaultProxy;
  clusterName: string;
  /** The Cluster + Secret manifest pgark is given (through the proxy when there is one). */
  manifest: string;
  /** Secret values that must never be printed. */
  secrets: string[];
  /** Segments already compared with the store, so a trial checks only what is new. */
  verifiedWal: Set<string>;
  checkedBackups: Set<string>;
  archiver: ArchiverSeen;
  secretsDir?: string;
  open(): Promise<ObjectStore>;
  stop(): Promise<void>;
}

/** Rewrites the store's address to the proxy's in a manifest (endpointURL for S3, destinationPath for Azure). */
function viaProxy(text: string, store: TestStore, proxy: HttpFaultProxy): string {
  const port = store.s3rver?.port ?? store.azurite?.port;
  return text.replaceAll(`127.0.0.1:${port}`, `127.0.0.1:${proxy.port}`);
}

export function storeManifest(site: Pick<Site, 'store' | 'proxy'>, opts: Parameters<TestStore['manifest']>[0]): string {
  const text = site.store.manifest(opts);
  return site.proxy ? viaProxy(text, site.store, site.proxy) : text;
}

export async function startSite(cell: string, o: SiteOptions): Promise<Site> {
  const store = await startStore(o.kind, { ...o.servers, prefix: `faults-${cell}-${Date.now().toString(36)}` });
  const port = store.s3rver?.port ?? store.azurite?.port;
  const proxy = o.proxy && port ? await startHttpFaultProxy(port) : undefined;
  const clusterName = 'faults';
  const pg = await startPostgres({ noStart: true });
  const manifest = join(pg.baseDir, 'cluster.yaml');
  const objectStore = {
    wal: { maxParallel: 4, ...(o.walCompression ? { compression: o.walCompression } : {}) },
    data: { jobs: 2, immediateCheckpoint: true, ...(o.dataCompression ? { compression: o.dataCompression } : {}) },
    ...o.objectStore,
  };
  const text = storeManifest({ store, proxy }, { clusterName, objectStore });
  // The Secret document would win over --secrets-dir, so only the Cluster is kept.
  writeFileSync(manifest, o.secretsDir ? text.split(/^---$/m)[0] : text);
  chmodSync(manifest, 0o644);
  const env = Object.entries({ PGARK_WAL_DAEMON_IDLE_SECONDS: '10', PGARK_NODE: process.execPath, ...o.archiveEnv })
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  pg.configure({
    archive_mode: 'on',
    archive_command: `${env} ${LAUNCHER} wal-archive -f ${manifest}${o.secretsDir ? ` --secrets-dir ${o.secretsDir}` : ''} %p`,
    // Segments stay in pg_wal so every archived one can be compared with its stored copy.
    wal_keep_size: '8GB',
    max_wal_size: '8GB',
    checkpoint_timeout: '30min',
  });
  await pg.start();
  await pg.query('CREATE TABLE t (id int primary key, payload text)');
  const verifiedWal = new Set<string>();
  const checkedBackups = new Set<string>();
  return {
    store,
    pg,
    proxy,
    clusterName,
    manifest,
    secrets: Object.entries(store.secretValues)
      .filter(([k]) => !['REGION', 'AZURE_STORAGE_ACCOUNT', 'ACCESS_KEY_ID', 'ca.crt'].includes(k))
      .map(([, v]) => v),
    verifiedWal,
    checkedBackups,
    archiver: { archived: 0, failed: 0, done: new Set(), backupFiles: new Set() },
    secretsDir: o.secretsDir,
    open: () => openObjectStore(store.resolved(clusterName)),
    async stop() {
      await pg.destroy();
      await proxy?.close();
      await store.stop();
    },
  };
}

/** Runs `body` on a fresh site and stops the site afterwards, whatever happened. */
export async function withSite(cell: string, o: SiteOptions, body: (site: Site) => Promise<void>): Promise<void> {
  const site = await startSite(cell, o);
  try {
    await body(site);
  } finally {
    await site.stop();
  }
}

/**
 * What restores are judged against: a base backup, then rows and pgbench load after it, all
 * archived; the origin stays idle afterwards, so the archive has one right answer.
 */
export async function restoreSource(site: Site, t: Tally): Promise<{ backupId: string; expected: string }> {
  await pgbench(site.pg, ['-i', '-s', '2', '-q']);
  await writeRows(site.pg, 3000);
  const b = await backup(site, { deadlineMs: 600_000 });
  if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  await writeRows(site.pg, 3000);
  await pgbench(site.pg, ['-c', '2', '-T', '2', '-n']);
  const expected = await tableChecksum(site.pg);
  if (!(await waitArchived(site, t, 0))) throw new Error('archiving did not catch up after the load');
  return { backupId: JSON.parse(b.stdout).backup_id, expected };
}

/** Runs fn and returns its result with the milliseconds it took (to aim kills inside a calibrated run). */
export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = Date.now();
  const r = await fn();
  return [r, Date.now() - t0];
}

export async function pgbench(pg: PgServer, args: string[]): Promise<void> {
  const r = await runPgTool(clientTool('pgbench'), ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], { who: pg.who });
  if (r.code !== 0) throw new Error(`pgbench ${args.join(' ')}: ${r.stderr}`);
}

/** Writes `rows` more rows into t (the table restores are compared on). */
export async function writeRows(pg: PgServer, rows: number): Promise<void> {
  await pg.query(`INSERT INTO t SELECT s.m + g, md5(random()::text) FROM generate_series(1, ${rows}) g, (SELECT coalesce(max(id), 0) AS m FROM t) s`);
}

export async function tableChecksum(q: Pick<PgServer, 'query'>): Promise<string> {
  const r = await q.query<{ c: string; m: string }>(`SELECT count(*)::text AS c, md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) AS m FROM t`);
  return `${r[0].c}:${r[0].m}`;
}

function readyCount(pg: PgServer): number {
  return readdirSync(join(pg.pgdata, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).length;
}

/** Switches WAL and waits until nothing is .ready; false (and counted stuck) when archiving does not catch up in time. */
export async function waitArchived(site: Site, t: Tally, trial: number, timeoutMs = 180_000): Promise<boolean> {
  await site.pg.query('SELECT pg_switch_wal()');
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; readyCount(site.pg) > 0; round++) {
    // After three failed calls the archiver sleeps a minute; a reload sets its latch, so trials do not wait for that.
    if (round % 10 === 9) await site.pg.query('SELECT pg_reload_conf()');
    if (Date.now() > deadline) {
      const [s] = await site.pg.query('SELECT last_failed_wal, failed_count FROM pg_stat_archiver');
      count(t, 'stuck', trial, `archiving did not catch up in ${timeoutMs / 1000} s (${readyCount(site.pg)} .ready, ${JSON.stringify(s)})`);
      return false;
    }
    await sleep(200);
  }
  return true;
}

/**
 * Every WAL file PostgreSQL considers archived (.done in archive_status, which PostgreSQL writes
 * after archive_command returned 0) must be in the store and decompress to the bytes of pg_wal.
 * Missing: lost + false ack; different or undecodable: corrupt + false ack. `all` re-checks
 * segments checked by earlier trials. Then pg_stat_archiver must agree (checkArchiver).
 */
export async function checkArchive(site: Site, t: Tally, trial: number, all = false): Promise<number> {
  const store = await site.open();
  try {
    const stored = new Map<string, string>();
    for await (const e of store.list(`${site.clusterName}/wals/`)) {
      if (!e.object) continue;
      const { base } = splitCodecSuffix(e.object.key.slice(e.object.key.lastIndexOf('/') + 1));
      stored.set(base, e.object.key);
    }
    const done = readdirSync(join(site.pg.pgdata, 'pg_wal', 'archive_status'))
      .filter((f) => f.endsWith('.done'))
      .map((f) => f.slice(0, -5))
      .filter((n) => all || !site.verifiedWal.has(n))
      .sort();
    for (const name of done) {
      site.verifiedWal.add(name);
      const key = stored.get(name);
      if (!key) {
        count(t, 'falseAck', trial, `${name} is .done but not in the store`);
        count(t, 'lost', trial, `${name} is .done but not in the store; PostgreSQL will recycle it`);
        continue;
      }
      const local = readFileSync(join(site.pg.pgdata, 'pg_wal', name));
      let remote: Buffer;
      try {
        remote = await decompressBuffer(splitCodecSuffix(key).codec, await store.getBuffer(key));
      } catch (e) {
        count(t, 'corrupt', trial, `${key} does not decompress: ${(e as Error).message}`);
        count(t, 'falseAck', trial, `${name} acknowledged, stored copy undecodable`);
        continue;
      }
      if (!remote.equals(local)) {
        count(t, 'corrupt', trial, `${key} differs from pg_wal/${name} (${remote.length} vs ${local.length} bytes)`);
        count(t, 'falseAck', trial, `${name} acknowledged, stored copy differs`);
      }
    }
    await checkArchiver(site, t, trial, new Set([...stored.keys()].filter((n) => n.endsWith('.backup'))));
    return done.length;
  } finally {
    await store.close();
  }
}

function doneNames(pg: PgServer): Set<string> {
  return new Set(
    readdirSync(join(pg.pgdata, 'pg_wal', 'archive_status'))
      .filter((f) => f.endsWith('.done') && !f.endsWith('.backup.done'))
      .map((f) => f.slice(0, -5)),
  );
}

/**
 * PostgreSQL's own count must agree with what it marked archived: archived_count grows once per
 * archive_command that returned 0, so it must have grown by the new .done segments and history
 * files plus the new backup history files. A .done nobody counted was renamed behind PostgreSQL's
 * back. PostgreSQL renames first and counts after, so both are read again until they agree (10 s).
 */
async function checkArchiver(site: Site, t: Tally, trial: number, backupFiles: Set<string>): Promise<void> {
  const fresh = <T>(now: Set<T>, seen: Set<T>) => [...now].filter((n) => !seen.has(n)).length;
  let now: ArchiverSeen;
  let off: number;
  for (let round = 0; ; round++) {
    const [s] = await site.pg.query<{ archived: string; failed: string }>('SELECT archived_count::text AS archived, failed_count::text AS failed FROM pg_stat_archiver');
    now = { archived: Number(s.archived), failed: Number(s.failed), done: doneNames(site.pg), backupFiles };
    off = fresh(now.done, site.archiver.done) + fresh(backupFiles, site.archiver.backupFiles) - (now.archived - site.archiver.archived);
    if (off === 0 || round === 50) break;
    await sleep(200);
  }
  if (off !== 0)
    count(t, 'archiverMismatch', trial, `pg_stat_archiver.archived_count grew by ${now.archived - site.archiver.archived}, but ${off > 0 ? 'more' : 'fewer'} WAL files became .done or stored backup history (${off > 0 ? '+' : ''}${off})`, Math.abs(off));
  t.archiveFailures += now.failed - site.archiver.failed;
  site.archiver = { ...now, done: new Set([...site.archiver.done, ...now.done]), backupFiles: new Set([...site.archiver.backupFiles, ...backupFiles]) };
}

/**
 * Reads a backup's data.tar through its codec and checks it against the backup_manifest inside:
 * every listed file present with its size and CRC-32C. Returns what is wrong, or undefined.
 */
export async function verifyDataTar(store: ObjectStore, serverName: string, backupId: string): Promise<string | undefined> {
  const prefix = `${serverName}/base/${backupId}/`;
  let key: string | undefined;
  for await (const e of store.list(prefix)) if (e.object && /\/data\.tar(\.[a-z0-9]+)?$/.test(e.object.key)) key = e.object.key;
  if (!key) return 'no data.tar';
  const files = new Map<string, { size: number; crc: string }>();
  let manifest: Buffer | undefined;
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      let crc = 0;
      let size = 0;
      const chunks: Buffer[] = [];
      stream.on('data', (data) => {
        const c = data as Buffer;
        crc = crc32c(c, crc);
        size += c.length;
        if (name === 'backup_manifest') chunks.push(c);
      });
      stream.on('end', () => {
        if (header.type === 'file') files.set(name, { size, crc: Buffer.from(new Uint32Array([crc >>> 0]).buffer).toString('hex') });
        if (name === 'backup_manifest') manifest = Buffer.concat(chunks);
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  try {
    const body = await store.get(key);
    const dec = decompressStream(splitCodecSuffix(key).codec);
    body.on('error', (e) => extract.destroy(e));
    dec.on('error', (e) => extract.destroy(e));
    body.pipe(dec).pipe(extract);
    await done;
  } catch (e) {
    return `${key} unreadable: ${(e as Error).message}`;
  }
  if (!manifest) return `${key} has no backup_manifest`;
  let parsed: { Files?: Array<{ Path: string; Size: number; Checksum?: string }> };
  try {
    parsed = JSON.parse(manifest.toString('utf8'));
  } catch (e) {
    return `backup_manifest does not parse: ${(e as Error).message}`;
  }
  for (const f of parsed.Files ?? []) {
    const got = files.get(f.Path);
    if (!got) return `${f.Path} listed in backup_manifest, missing from ${key}`;
    if (got.size !== f.Size) return `${f.Path}: ${got.size} bytes, manifest says ${f.Size}`;
    if (f.Checksum && got.crc !== f.Checksum) return `${f.Path}: CRC-32C ${got.crc}, manifest says ${f.Checksum}`;
  }
  return undefined;
}

/** Every DONE backup not checked before must have a whole data.tar and the WAL from begin_wal to end_wal. */
export async function checkBackups(site: Site, t: Tally, trial: number): Promise<{ done: number; other: number }> {
  const store = await site.open();
  try {
    const catalog = await listBackups(store, site.clusterName);
    const walKeys = new Set<string>();
    for await (const e of store.list(`${site.clusterName}/wals/`)) if (e.object) walKeys.add(splitCodecSuffix(e.object.key.slice(e.object.key.lastIndexOf('/') + 1)).base);
    let done = 0;
    for (const b of catalog.backups) {
      if (b.status !== 'DONE') continue;
      done++;
      if (site.checkedBackups.has(b.backup_id)) continue;
      site.checkedBackups.add(b.backup_id);
      const problem = await verifyDataTar(store, site.clusterName, b.backup_id);
      if (problem) count(t, 'doneIncomplete', trial, `backup ${b.backup_id} is DONE but ${problem}`);
      for (const w of [b.begin_wal, b.end_wal]) if (w && !walKeys.has(w)) count(t, 'doneIncomplete', trial, `backup ${b.backup_id} is DONE but WAL ${w} is not in the store`);
    }
    return { done, other: catalog.backups.length - done };
  } finally {
    await store.close();
  }
}

/** `pgark backup` of the site's server, run as its OS user (as CNPG runs it in the pod). */
export function backup(site: Site, opts: CliOptions & { manifest?: string } = {}): Promise<CliResult> {
  const secrets = site.secretsDir ? ['--secrets-dir', site.secretsDir] : [];
  return pgark(['backup', '-f', opts.manifest ?? site.manifest, ...secrets, '--json', '--no-progress', '--pgdata', site.pg.pgdata], {
    ...opts,
    asServerUser: true,
    env: { ...site.pg.env, ...opts.env },
  });
}

export interface RestoreAttempt {
  result: CliResult;
  dir: string;
  pgdata: string;
  port: number;
  /** The recovered server's t checksum, when the restore left one running. */
  checksum(): Promise<string | undefined>;
  /** Stops a server the restore left running (a killed restore leaves one too). */
  stopServer(): Promise<void>;
  cleanup(): Promise<void>;
}

/** A recovery manifest for the site's server (through the proxy when there is one). */
export function recoveryManifestFor(site: Site, name = 'restored'): string {
  const text = recoveryManifest(site.store, { name, sourceName: site.clusterName, noBackup: true });
  return site.proxy ? viaProxy(text, site.store, site.proxy) : text;
}

/** `pgark restore --start` into a fresh directory (or `pgdata`), returning the attempt for checks. */
export async function restoreOnce(site: Site, opts: CliOptions & { pgdata?: string; manifestText?: string; extra?: string[] } = {}): Promise<RestoreAttempt> {
  const dir = scratchDir('faults-restore');
  const manifest = join(dir.path, 'recovery.yaml');
  writeFileSync(manifest, opts.manifestText ?? recoveryManifestFor(site));
  chmodSync(manifest, 0o644);
  const pgdata = opts.pgdata ?? join(dir.path, 'data');
  const port = await freePort();
  const result = await pgark(['restore', '-f', manifest, '--pgdata', pgdata, '--pghost', '127.0.0.1', '--pgport', String(port), '--start', ...(opts.extra ?? [])], opts);
  const stopServer = async () => {
    if (existsSync(join(pgdata, 'postmaster.pid'))) await runPgTool(site.pg.bin.path('pg_ctl'), ['-D', pgdata, '-m', 'immediate', '-w', 'stop'], { who: site.pg.who });
  };
  return {
    result,
    dir: dir.path,
    pgdata,
    port,
    async checksum() {
      try {
        const pgmod = (await import('pg')).default;
        const c = new pgmod.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
        await c.connect();
        try {
          return await tableChecksum({ query: async (sql: string) => (await c.query(sql)).rows } as Pick<PgServer, 'query'>);
        } finally {
          await c.end();
        }
      } catch {
        return undefined;
      }
    },
    stopServer: () => stopServer().catch(() => undefined),
    async cleanup() {
      await stopServer().catch(() => undefined);
      dir.cleanup();
    },
  };
}

/** A restore that exited 0 must have brought back exactly `expected`; anything else is counted. */
export async function judgeRestore(t: Tally, trial: number, a: RestoreAttempt, expected: string, what: string): Promise<boolean> {
  if (a.result.code !== 0) return false;
  const got = await a.checksum();
  if (got !== expected) count(t, 'badRestoreOk', trial, `${what}: restore exited 0 but t is ${got ?? 'unreadable'}, expected ${expected}`);
  return got === expected;
}
