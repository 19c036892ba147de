/**
 * Cells on a file:// store, where the runner can plant bad objects directly: the malformed-manifest
 * corpus, hostile or truncated data.tar files, backup.info with wrong types, WAL objects of the
 * wrong size, a history file that contradicts the catalog; and disk-full on the restore target, on
 * the restore prefetch spool and on the archive spool (tmpfs mounts, which need root).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { scratchDir } from '../../test/harness/tmp.js';
import { checkArchive, checkSecrets, checkStuck, judgeRestore, pgark, pgbench, restoreOnce, restoreSource, sleep, startSite, waitArchived, writeRows, type Site } from './site.js';
import { count, newTally, type Tally } from './tally.js';
import type { Cell, RunContext } from './cell.js';

interface Source {
  site: Site;
  /** The store's directory (the file:// destinationPath). */
  root: string;
  backupId: string;
  expected: string;
  stop(): Promise<void>;
}

/** A file:// store with one base backup and WAL after it; the origin is left idle so restores have one right answer. */
function fileSource(ctx: RunContext): Promise<Source> {
  return ctx.shared('file-source', async () => {
    const site = await startSite('file-source', { kind: 'file', servers: ctx.servers });
    const { backupId, expected } = await restoreSource(site, newTally('file-source'));
    return { site, root: site.store.destinationPath.slice('file://'.length), backupId, expected, stop: () => site.stop() };
  });
}

const baseDir = (s: Source, id: string) => join(s.root, s.site.clusterName, 'base', id);
const walDir = (s: Source) => join(s.root, s.site.clusterName, 'wals');

/** A later backup ID (so restores pick it as the latest), its directory a copy of the real backup. */
function plantBackup(s: Source, trial: number): { id: string; dir: string } {
  const id = `${s.backupId.slice(0, 9)}2359${String(trial % 60).padStart(2, '0')}`;
  const dir = baseDir(s, id);
  rmSync(dir, { recursive: true, force: true });
  cpSync(baseDir(s, s.backupId), dir, { recursive: true });
  const info = join(dir, 'backup.info');
  writeFileSync(info, readFileSync(info, 'utf8').replace(/^backup_id=.*$/m, `backup_id=${id}`));
  return { id, dir };
}

type TarEntry = { header: Partial<tar.Header> & { name: string }; body?: string };

/** data.tar with `entries` in front of the real ones (tar readers stop at the first end-of-archive marker, so it is cut off). */
async function prependEntries(file: string, entries: TarEntry[]): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) pack.entry(e.header as tar.Header, e.body ?? '');
  pack.finalize();
  await ended;
  const head = Buffer.concat(chunks);
  writeFileSync(file, Buffer.concat([head.subarray(0, head.length - 1024), readFileSync(file)]));
}

interface Hostile {
  name: string;
  /** Builds the entries; `outside` is a fresh path outside the restore target that nothing may create. */
  entries(outside: string): TarEntry[];
  /** Whether the hostile entry had an effect, given the restored data directory. */
  escaped(outside: string, pgdata: string): boolean;
}

const HOSTILE: Hostile[] = [
  { name: 'path traversal', entries: (o) => [{ header: { name: `../../../../../..${o}`, type: 'file', size: 1, mode: 0o644 }, body: 'x' }], escaped: (o) => existsSync(o) },
  { name: 'absolute path', entries: (o) => [{ header: { name: o, type: 'file', size: 1, mode: 0o644 }, body: 'x' }], escaped: (o) => existsSync(o) },
  {
    name: 'symlink then a file through it',
    entries: (o) => [
      { header: { name: 'base/escape', type: 'symlink', linkname: o } },
      { header: { name: 'base/escape/owned', type: 'file', size: 1, mode: 0o644 }, body: 'x' },
    ],
    escaped: (o) => existsSync(join(o, 'owned')),
  },
  {
    name: 'hard link to a file outside',
    entries: () => [{ header: { name: 'global/passwd', type: 'link', linkname: '../../../../../../etc/passwd' } }],
    escaped: (_o, pgdata) => existsSync(join(pgdata, 'global', 'passwd')) && statSync(join(pgdata, 'global', 'passwd')).ino === statSync('/etc/passwd').ino,
  },
  {
    name: 'device node',
    entries: () => [{ header: { name: 'global/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 } }],
    escaped: (_o, pgdata) => existsSync(join(pgdata, 'global', 'null')) && lstatSync(join(pgdata, 'global', 'null')).isCharacterDevice(),
  },
  { name: 'truncated data.tar', entries: () => [], escaped: () => false },
];

/** Wrong-typed backup.info fields: a restore must fail clearly or fall back to a good backup, never restore wrong data. */
const BAD_INFO: Array<[string, string]> = [
  ['timeline', 'one'],
  ['begin_offset', "'forty'"],
  ['xlog_segment_size', '0'],
  ['begin_wal', "'not-a-wal-name'"],
  ['end_time', "'yesterday'"],
  ['tablespaces', "'oops'"],
  ['version', 'None'],
  ['end_xlog', "'0/ZZ'"],
];

async function restoreJudged(ctx: RunContext, t: Tally, s: Source, trial: number, what: string, opts: Parameters<typeof restoreOnce>[1] = {}): Promise<number | null> {
  const a = await restoreOnce(s.site, { deadlineMs: 600_000, ...opts });
  checkStuck(t, trial, a.result, `pgark restore (${what})`);
  checkSecrets(t, trial, s.site.secrets, a.result, `pgark restore (${what})`);
  await judgeRestore(t, trial, a, s.expected, what);
  await a.cleanup();
  ctx.log(`${t.cell} #${trial}: ${what}: restore exit ${a.result.code ?? a.result.signal}${a.result.code ? `: ${a.result.stderr.trim().split('\n').pop()?.slice(0, 160)}` : ''}`);
  return a.result.code;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A tmpfs of `size` at a fresh directory, writable by the server's user; removed by the returned function. */
function tmpfs(size: string): { path: string; size: string; release(): void } {
  const dir = scratchDir('faults-tmpfs');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir.path]);
  return {
    path: dir.path,
    size,
    release: () => {
      execFileSync('umount', ['-l', dir.path]);
      dir.cleanup();
    },
  };
}

/**
 * The WAL runtime directory on a mount. Left for pgark to create: it trusts the directory only when
 * it is private to the server's user, and a directory the runner made would send every call in-process.
 */
const runtimeDirOn = (mount: string) => ({ PGARK_WAL_RUNTIME_DIR: join(mount, 'rt') });

/** Fills the file system at `mount` until `leaveBytes` are free; removing the returned file gives the space back. */
function fill(mount: string, leaveBytes: number): string {
  const file = join(mount, 'filler');
  const s = statfsSync(mount);
  writeFileSync(file, Buffer.alloc(Math.max(0, s.bavail * s.bsize - leaveBytes)));
  return file;
}

/** A restore with part of its disk on a tmpfs of minMiB..maxMiB; `place` says which part. */
function diskFullCell(name: string, about: string, minMiB: number, maxMiB: number, place: (mount: string) => Parameters<typeof restoreOnce>[1]): Cell {
  return {
    name,
    about,
    kind: 'disk',
    async run(ctx, t) {
      if (!isRoot()) {
        t.skipped = 'needs root (mounts a tmpfs)';
        return;
      }
      const s = await fileSource(ctx);
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        t.trials++;
        const fs = tmpfs(`${minMiB + Math.floor(Math.random() * (maxMiB - minMiB + 1))}m`);
        try {
          await restoreJudged(ctx, t, s, trial, `${name}: ${fs.size}`, place(fs.path));
        } finally {
          fs.release();
        }
      }
    },
  };
}

export const localCells: Cell[] = [
  {
    name: 'bad-manifests',
    about: 'every manifest of test/fixtures/manifests/invalid through check, backup, wal-archive and restore: exit non-zero',
    kind: 'input',
    async run(ctx, t) {
      const dir = join(PACKAGE_ROOT, 'test', 'fixtures', 'manifests', 'invalid');
      const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
      const commands = [['check'], ['backup', '--no-progress'], ['wal-archive', '--no-daemon', '--', 'pg_wal/000000010000000000000001'], ['restore', '--dry-run', '--pgdata', '/tmp/pgark-faults-never']];
      for (const f of files.slice(0, ctx.quick ? 4 : files.length)) {
        t.trials++;
        for (const c of commands) {
          const [cmd, ...rest] = c;
          const r = await pgark([cmd, '-f', join(dir, f), ...rest], { deadlineMs: 60_000, env: { PGHOST: '127.0.0.1', PGPORT: '1' } });
          checkStuck(t, t.trials, r, `pgark ${cmd} -f ${f}`);
          if (r.code === 0) count(t, 'badInputAccepted', t.trials, `pgark ${cmd} accepted invalid/${f}`);
        }
      }
      if (existsSync('/tmp/pgark-faults-never')) count(t, 'badInputAccepted', t.trials, 'restore --dry-run created its --pgdata');
    },
  },
  {
    name: 'hostile-tar',
    about: 'a later backup whose data.tar is truncated or carries path traversal, absolute paths, symlink escape, a hard link out, a device node',
    kind: 'input',
    async run(ctx, t) {
      const s = await fileSource(ctx);
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        const h = HOSTILE[(trial - 1) % HOSTILE.length];
        t.trials++;
        const planted = plantBackup(s, trial);
        const tarFile = join(planted.dir, 'data.tar');
        const outside = `/tmp/pgark-fault-escape-${randomBytes(4).toString('hex')}`;
        if (h.name === 'truncated data.tar') truncateSync(tarFile, Math.floor(statSync(tarFile).size * Math.random()));
        else await prependEntries(tarFile, h.entries(outside));
        const a = await restoreOnce(s.site, { deadlineMs: 600_000 });
        checkStuck(t, trial, a.result, `restore of a ${h.name}`);
        if (h.escaped(outside, a.pgdata)) count(t, 'badRestoreOk', trial, `${h.name}: the hostile entry was extracted (exit ${a.result.code})`);
        if (a.result.code === 0 && h.name !== 'truncated data.tar') count(t, 'badInputAccepted', trial, `restore of a backup with a ${h.name} exited 0`);
        await judgeRestore(t, trial, a, s.expected, h.name);
        ctx.log(`${t.cell} #${trial}: ${h.name}: restore exit ${a.result.code ?? a.result.signal}`);
        await a.cleanup();
        rmSync(outside, { recursive: true, force: true });
        rmSync(planted.dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'bad-backup-info',
    about: 'a later backup.info with a wrong-typed field: the restore fails clearly or uses the good backup',
    kind: 'input',
    async run(ctx, t) {
      const s = await fileSource(ctx);
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        const [field, value] = BAD_INFO[(trial - 1) % BAD_INFO.length];
        t.trials++;
        const planted = plantBackup(s, trial);
        const info = join(planted.dir, 'backup.info');
        writeFileSync(info, readFileSync(info, 'utf8').replace(new RegExp(`^${field}=.*$`, 'm'), `${field}=${value}`));
        await restoreJudged(ctx, t, s, trial, `backup.info ${field}=${value}`);
        const list = await pgark(['backup', 'list', '-f', s.site.manifest], { deadlineMs: 60_000 });
        checkStuck(t, trial, list, 'pgark backup list');
        rmSync(planted.dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'wal-wrong-size',
    about: 'a WAL object the restore needs is cut short or has bytes appended',
    kind: 'input',
    async run(ctx, t) {
      const s = await fileSource(ctx);
      const timelineDir = join(walDir(s), '0000000100000000');
      const segments = readdirSync(timelineDir).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort();
      // Only segments after the backup's end hold rows the restore cannot get from data.tar.
      const endWal = /^end_wal=(\w+)/m.exec(readFileSync(join(baseDir(s, s.backupId), 'backup.info'), 'utf8'))?.[1] ?? '';
      const candidates = segments.filter((n) => n > endWal);
      if (candidates.length === 0) throw new Error(`no segment after ${endWal} to damage`);
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        t.trials++;
        const name = candidates[(trial - 1) % candidates.length];
        const file = join(timelineDir, name);
        const saved = `${file}.faults-saved`;
        copyFileSync(file, saved);
        const grow = trial % 2 === 0;
        if (grow) writeFileSync(file, Buffer.concat([readFileSync(saved), randomBytes(8192)]));
        else truncateSync(file, Math.floor(statSync(saved).size * Math.random()));
        await restoreJudged(ctx, t, s, trial, `${name} ${grow ? 'with 8 KiB appended' : 'cut short'}`);
        copyFileSync(saved, file);
        rmSync(saved);
      }
    },
  },
  {
    name: 'history-contradiction',
    about: 'a timeline 2 history file that forks before the backup began (the catalog says timeline 1)',
    kind: 'input',
    async run(ctx, t) {
      const s = await fileSource(ctx);
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        t.trials++;
        const history = join(walDir(s), '00000002.history');
        writeFileSync(history, trial % 2 ? '1\t0/1000000\tforged: forks before the backup\n' : '1\t0/ZZZ\tgarbage\n');
        await restoreJudged(ctx, t, s, trial, trial % 2 ? 'history forking before the backup' : 'unparsable history');
        rmSync(history);
      }
    },
  },
  diskFullCell('disk-full-restore', 'the restore target is a tmpfs too small for the data directory', 8, 48, (mount) => ({ pgdata: join(mount, 'data') })),
  diskFullCell('disk-full-spool', 'the WAL runtime directory (restore prefetch spool) is a tiny tmpfs during a restore', 1, 41, (mount) => ({ env: runtimeDirOn(mount) })),
  {
    name: 'disk-full-archive-spool',
    about: "the WAL daemon's runtime directory (archive spool markers, socket, log) is a full tmpfs while WAL is archived under pgbench; then space returns",
    kind: 'disk',
    async run(ctx, t) {
      if (!isRoot()) {
        t.skipped = 'needs root (mounts a tmpfs)';
        return;
      }
      const fs = tmpfs('2m');
      try {
        const site = await startSite(t.cell, { kind: 's3', servers: ctx.servers, archiveEnv: runtimeDirOn(fs.path) });
        try {
          await pgbench(site.pg, ['-i', '-s', '2', '-q']);
          for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
            t.trials++;
            // 0-32 KiB left: from no room at all to room for a few markers but not the log lines after them.
            const filler = fill(fs.path, 4096 * Math.floor(Math.random() * 9));
            await Promise.all([pgbench(site.pg, ['-c', '2', '-T', '3', '-n']), writeRows(site.pg, 100_000)]);
            await site.pg.query('SELECT pg_switch_wal()');
            await sleep(2000);
            const whileFull = await checkArchive(site, t, trial);
            rmSync(filler);
            if (await waitArchived(site, t, trial)) await checkArchive(site, t, trial);
            ctx.log(`${t.cell} #${trial}: ${whileFull} WAL files archived while the spool was full, ${site.verifiedWal.size} checked so far`);
          }
          await checkArchive(site, t, t.trials, true);
        } finally {
          await site.stop();
        }
      } finally {
        fs.release();
      }
    },
  },
];
