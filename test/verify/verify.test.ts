/**
 * `pgark verify` on real backups: PostgreSQL 15 archiving with pgark into s3rver, pgark backups
 * with the none, gzip and zstd codecs and one barman-cloud-backup 3.4 backup, all in one store.
 * Each corruption case copies the server's objects into a fresh prefix of the same s3rver (on
 * disk, as s3rver keeps them) or into Azurite (through the store), damages the copy and runs the
 * real CLI against it, so the servers and the backup set are made once. Verification must pass on
 * the intact set, and name the damaged object and what is wrong with it in every case.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { createTestData, pgark, run, startArchivingServer, type ArchivingServer } from '../backup/helpers.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { backupInfoKey, backupPrefix, walKey } from '../../src/catalog/layout.js';
import { parseBackupInfo, serializeBackupInfo } from '../../src/catalog/backup-info.js';
import { nextSegment, segmentNumber, parseSegmentName } from '../../src/pg/wal-names.js';
import { verifyResultsPrefix } from '../../src/verify/results.js';
import type { VerifyResult } from '../../src/verify/report.js';

const SERVER = 'pg';

interface Taken {
  id: string;
  codec: string;
  beginWal: string;
  endWal: string;
}

async function withStore<T>(store: TestStore, fn: (s: ObjectStore) => Promise<T>): Promise<T> {
  const s = await openObjectStore(store.resolved(SERVER));
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

async function keysUnder(store: TestStore, prefix: string): Promise<string[]> {
  return withStore(store, async (s) => {
    const keys: string[] = [];
    for await (const e of s.list(prefix)) if (e.object) keys.push(e.object.key);
    return keys.sort();
  });
}

/** Every object of the server, streamed from one store into another. */
async function copyServer(from: TestStore, to: TestStore): Promise<void> {
  await withStore(from, (src) =>
    withStore(to, async (dst) => {
      for await (const e of src.list(`${SERVER}/`)) if (e.object) await dst.put(e.object.key, await src.get(e.object.key));
    }),
  );
}

async function rewrite(store: TestStore, key: string, change: (b: Buffer) => Buffer): Promise<void> {
  await withStore(store, async (s) => {
    await s.put(key, change(Buffer.from(await s.getBuffer(key))));
  });
}

async function verify(store: TestStore, manifestDir: string, name: string, args: string[]): Promise<{ code: number; result: VerifyResult; stderr: string }> {
  const manifest = join(manifestDir, `${name}.yaml`);
  writeFileSync(manifest, store.manifest({ clusterName: SERVER }));
  const r = await pgark(['verify', '-f', manifest, '--json', ...args]);
  assert.ok(r.stdout.trim().startsWith('{'), `JSON on stdout: ${r.stdout}${r.stderr}`);
  return { code: r.code, result: JSON.parse(r.stdout) as VerifyResult, stderr: r.stderr };
}

const dataTar = (t: Taken) => `${backupPrefix(SERVER, t.id)}data.tar${{ none: '', gzip: '.gz', zstd: '.zst' }[t.codec] ?? ''}`;

describe('pgark verify', () => {
  let store: TestStore;
  let server: ArchivingServer;
  const taken = new Map<string, Taken>();
  let barmanId = '';
  let copies = 0;

  /**
   * A fresh copy of the server's objects on the same s3rver. s3rver keeps each object as files named by
   * its key under <dataDir>/<bucket>/, so the copy is a copy of those files: the same objects as a GET
   * and PUT of each through the store's front, without the CPU of moving every backup through HTTP
   * twice for each case (the copy is set-up, not what these tests are about).
   */
  async function copy(): Promise<TestStore> {
    const prefix = `copy-${copies++}-${Date.now()}`;
    const c = await startStore('s3', { s3rver: store.s3rver, prefix });
    const s3 = store.s3rver!;
    const under = (destinationPath: string) => join(s3.dataDir, s3.bucket, new URL(destinationPath).pathname, SERVER);
    cpSync(under(store.destinationPath), under(c.destinationPath), { recursive: true });
    return c;
  }

  async function backup(codec: string, name = `v-${codec}`): Promise<Taken> {
    const b = await pgark(['backup', '-f', server.manifest, '--compression', codec, '--name', name, '--immediate-checkpoint', '--json', '--pgdata', server.pg.pgdata], server.pg.env);
    assert.equal(b.code, 0, b.stderr);
    const out = JSON.parse(b.stdout);
    const t = { id: out.backup_id, codec, beginWal: out.begin_wal, endWal: out.end_wal };
    taken.set(name, t);
    return t;
  }

  /** The segment the last switchWal() completed. */
  let lastSwitched = '';

  async function switchWal(times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      await server.pg.query("INSERT INTO t SELECT g, md5(g::text) FROM generate_series((SELECT max(id) + 1 FROM t), (SELECT max(id) + 500 FROM t)) g");
      // pg_switch_wal() returns the end of the segment it completed, which names that segment.
      lastSwitched = (await server.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w'))[0].w;
    }
  }

  /**
   * Waits until the segment the last switchWal() completed is in the store (pgark's archive_command
   * stored it): the copies read s3rver's files on disk, and one taken while that segment's PUT is
   * still being written holds part of it. (Waiting for "the current segment less one" missed it: right
   * after a switch the current position is the completed segment's end, which pg_walfile_name names
   * as that segment, so the wait ended while it was being uploaded; a copy then held 5749901 of its
   * 16777216 bytes.)
   */
  async function archived(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const last = (await server.pg.query<{ l: string | null }>('SELECT last_archived_wal AS l FROM pg_stat_archiver'))[0].l;
      if (last && segmentNumber(parseSegmentName(last), 16 << 20) >= segmentNumber(parseSegmentName(lastSwitched), 16 << 20)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('WAL archiving did not catch up');
  }

  before(async () => {
    store = await startStore('s3');
    server = await startArchivingServer(store, { clusterName: SERVER });
    await createTestData(server.pg, 20000);
    await backup('none');
    await switchWal(3);
    await backup('gzip');
    await backup('zstd');
    const barman = store.barman!;
    const b = await run(
      'barman-cloud-backup',
      [...barman.args, '--name', 'v-barman', '--immediate-checkpoint', '--gzip', '-h', server.pg.host, '-p', String(server.pg.port), '-U', 'postgres', store.destinationPath, SERVER],
      { ...barman.env, ...server.pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    const list = JSON.parse((await pgark(['backup', 'list', '-f', server.manifest, '--json'])).stdout).backups_list as { backup_id: string; backup_name: string }[];
    barmanId = list.find((x) => x.backup_name === 'v-barman')!.backup_id;
    await switchWal(1);
    await archived();
  });

  after(async () => {
    await server?.pg.destroy();
    await store?.stop();
  });

  it('passes every backup of the intact set (pgark none/gzip/zstd, barman-cloud) and their WAL chain, and stores its result where barman-cloud does not look', async () => {
    const c = await copy();
    try {
      const { code, result, stderr } = await verify(c, server.pg.baseDir, 'good', ['--backup', 'all', '--wal']);
      assert.equal(code, 0, JSON.stringify(result.problems) + stderr);
      assert.equal(result.version, 1);
      assert.equal(result.ok, true);
      assert.deepEqual(result.problems, []);
      assert.equal(result.backups.length, 4);
      for (const codec of ['none', 'gzip', 'zstd']) {
        const b = result.backups.find((x) => x.backupId === taken.get(`v-${codec}`)!.id)!;
        assert.equal(b.writer, 'pgark', codec);
        assert.ok(b.manifestFiles! > 900, `${codec}: every file checked against backup_manifest (${b.manifestFiles})`);
        assert.ok(b.objects.every((o) => o.sha256 === 'match' && o.entries > 0), codec);
      }
      const theirs = result.backups.find((x) => x.backupId === barmanId)!;
      assert.equal(theirs.writer, 'barman-cloud');
      assert.equal(theirs.manifestFiles, null);
      assert.ok(theirs.objects.every((o) => o.sha256 === 'not-recorded' && o.entries > 900));
      assert.match(theirs.notChecked.join('\n'), /no backup_manifest/);
      const wal = result.wal!;
      assert.equal(wal.gaps.length, 0);
      assert.equal(wal.segmentsRead, wal.segmentsInChain);
      assert.equal(wal.firstSegment, taken.get('v-none')!.beginWal);
      assert.ok(wal.windows.every((w) => w.endsAt === 'end-of-archive' && w.fromLsn !== null), JSON.stringify(wal.windows));
      assert.equal(result.objectsRead, result.backups.reduce((n, b) => n + b.objects.length, 0) + wal.segmentsRead);

      // Stored with the run, and invisible to barman-cloud's catalog.
      assert.ok(result.storedAt?.startsWith(verifyResultsPrefix(SERVER)));
      assert.deepEqual(await keysUnder(c, verifyResultsPrefix(SERVER)), [result.storedAt]);
      const barman = c.barman!;
      const list = await run('barman-cloud-backup-list', [...barman.args, '--format', 'json', c.destinationPath, SERVER], barman.env);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(JSON.parse(list.stdout).backups_list.length, 4);

      const human = await pgark(['verify', '-f', join(server.pg.baseDir, 'good.yaml'), '--backup', taken.get('v-gzip')!.id]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /: OK \(/);
      assert.match(human.stdout, new RegExp(`backup ${taken.get('v-gzip')!.id} \\(v-gzip\\) \\[pgark\\]: OK, 1 object\\(s\\), \\d+ files match backup_manifest, SHA-256 of every object matches`));
    } finally {
      await c.stop();
    }
  });

  for (const codec of ['none', 'gzip', 'zstd']) {
    it(`names a ${codec} data tar with one flipped byte`, async () => {
      const c = await copy();
      try {
        const key = dataTar(taken.get(`v-${codec}`)!);
        await rewrite(c, key, (b) => {
          b[Math.floor(b.length / 2)] ^= 0x5a;
          return b;
        });
        const { code, result } = await verify(c, server.pg.baseDir, `flip-${codec}`, ['--backup', taken.get(`v-${codec}`)!.id]);
        assert.equal(code, 1);
        const mine = result.problems.filter((p) => p.key === key);
        // A codec's own check (gzip CRC, zstd checksum) may stop the read before the digest is complete.
        assert.ok(mine.some((p) => /its SHA-256 is [0-9a-f]{64}, backup.info recorded [0-9a-f]{64}|data cannot be decoded|the tar cannot be read/.test(p.what)), JSON.stringify(result.problems));
        assert.ok(mine.every((p) => !/has none/.test(p.what)), JSON.stringify(mine));
        // Uncompressed, the byte lands in a file's content: the manifest names the file too.
        if (codec === 'none') assert.ok(mine.some((p) => /backup_manifest: \S+ has CRC-32C [0-9a-f]{8}, the manifest says [0-9a-f]{8}|the tar cannot be read/.test(p.what)), JSON.stringify(mine));
        assert.equal(result.backups[0].ok, false);
      } finally {
        await c.stop();
      }
    });
  }

  it('names a truncated object', async () => {
    const c = await copy();
    try {
      const key = dataTar(taken.get('v-gzip')!);
      await rewrite(c, key, (b) => b.subarray(0, Math.floor(b.length / 3)));
      const { code, result } = await verify(c, server.pg.baseDir, 'truncated', ['--backup', 'v-gzip']);
      assert.equal(code, 1);
      const mine = result.problems.filter((p) => p.key === key).map((p) => p.what);
      assert.ok(mine.some((w) => /gzip data cannot be decoded|truncated|end of data/i.test(w)), JSON.stringify(mine));
    } finally {
      await c.stop();
    }
  });

  it('reports a missing WAL segment as a gap range and the recoverable window each backup keeps', async () => {
    const c = await copy();
    try {
      const none = taken.get('v-none')!;
      const gzip = taken.get('v-gzip')!;
      const lost = nextSegment(none.endWal);
      assert.ok(lost < gzip.beginWal, `${lost} lies between the first two backups`);
      await withStore(c, (s) => s.delete([walKey(SERVER, lost)]));
      const { code, result } = await verify(c, server.pg.baseDir, 'gap', ['--backup', 'all', '--wal']);
      assert.equal(code, 1);
      const wal = result.wal!;
      assert.deepEqual(
        wal.gaps.map((g) => [g.from, g.to, g.missing]),
        [[lost, lost, 1]],
      );
      assert.ok(result.problems.some((p) => p.key === walKey(SERVER, lost) && /^missing: 1 segment/.test(p.what)));
      const before = wal.windows.find((w) => w.backupId === none.id)!;
      assert.equal(before.endsAt, 'gap');
      assert.equal(before.lastSegment, none.endWal);
      for (const id of [gzip.id, taken.get('v-zstd')!.id, barmanId]) {
        const w = wal.windows.find((x) => x.backupId === id)!;
        assert.equal(w.endsAt, 'end-of-archive', id);
        assert.equal(w.lastSegment, wal.lastSegment, id);
      }
    } finally {
      await c.stop();
    }
  });

  it('names a WAL segment whose pages are from another timeline', async () => {
    const c = await copy();
    try {
      const victim = nextSegment(taken.get('v-gzip')!.beginWal);
      await rewrite(c, walKey(SERVER, victim), (b) => {
        for (let off = 0; off < b.length; off += 8192) b.writeUInt32LE(2, off + 4);
        return b;
      });
      const { code, result } = await verify(c, server.pg.baseDir, 'timeline', ['--backup', 'v-gzip', '--wal']);
      assert.equal(code, 1);
      const mine = result.problems.filter((p) => p.key === walKey(SERVER, victim)).map((p) => p.what);
      assert.ok(mine.some((w) => /timeline 2, later than timeline 1/.test(w)), JSON.stringify(result.problems));
      const w = result.wal!.windows[0];
      assert.equal(w.endsAt, 'bad-segment');
    } finally {
      await c.stop();
    }
  });

  it('names a history file that contradicts the other history files', async () => {
    const c = await copy();
    try {
      await withStore(c, async (s) => {
        await s.put(walKey(SERVER, '00000002.history'), Buffer.from('1\t0/5000000\tno recovery target specified\n'));
        await s.put(walKey(SERVER, '00000003.history'), Buffer.from('1\t0/3000000\tno recovery target specified\n2\t0/6000000\tno recovery target specified\n'));
      });
      const { code, result } = await verify(c, server.pg.baseDir, 'history', ['--wal']);
      assert.equal(code, 1);
      const mine = result.problems.filter((p) => p.key === walKey(SERVER, '00000003.history'));
      assert.equal(mine.length, 1, JSON.stringify(result.problems));
      assert.match(mine[0].what, /gives timeline 2 the ancestry \[1 until 0\/3000000\], but 00000002\.history says \[1 until 0\/5000000\]/);
    } finally {
      await c.stop();
    }
  });

  it('names a backup_manifest whose own checksum does not match', async () => {
    const c = await copy();
    try {
      const t = taken.get('v-none')!;
      const key = dataTar(t);
      let sha = '';
      await rewrite(c, key, (b) => {
        const at = b.indexOf('"Manifest-Checksum": "') + '"Manifest-Checksum": "'.length;
        assert.ok(at > 100, 'the manifest is in data.tar');
        b[at] = b[at] === 0x30 ? 0x31 : 0x30;
        sha = createHash('sha256').update(b).digest('hex');
        return b;
      });
      // backup.info records the damaged object's digest, so only the manifest can tell.
      await rewrite(c, backupInfoKey(SERVER, t.id), (b) => {
        const info = parseBackupInfo(b.toString('utf8'), t.id);
        return Buffer.from(serializeBackupInfo({ ...info, pgark_object_sha256: { [key.slice(key.lastIndexOf('/') + 1)]: sha } }));
      });
      const { code, result } = await verify(c, server.pg.baseDir, 'manifest', ['--backup', t.id]);
      assert.equal(code, 1);
      assert.deepEqual(
        result.problems.map((p) => p.key),
        [key],
      );
      assert.match(result.problems[0].what, /^backup_manifest: backup_manifest's own checksum is [0-9a-f]{64}, it states [0-9a-f]{64}$/);
    } finally {
      await c.stop();
    }
  });

  it('works on Azure Blob Storage (Azurite) too: passes the intact copy, names a flipped byte', async () => {
    const az = await startStore('azure-connection-string');
    try {
      await copyServer(store, az);
      const good = await verify(az, server.pg.baseDir, 'azure', ['--backup', 'all']);
      assert.equal(good.code, 0, JSON.stringify(good.result.problems));
      const key = dataTar(taken.get('v-zstd')!);
      await rewrite(az, key, (b) => {
        b[b.length - 100] ^= 1;
        return b;
      });
      const bad = await verify(az, server.pg.baseDir, 'azure', ['--backup', 'v-zstd']);
      assert.equal(bad.code, 1);
      assert.ok(bad.result.problems.some((p) => p.key === key));
    } finally {
      await az.stop();
    }
  });

  it('--since-last reads only the backups and WAL that are new since the last good run', async () => {
    const first = await verify(store, server.pg.baseDir, 'main', ['--backup', 'all', '--wal']);
    assert.equal(first.code, 0, JSON.stringify(first.result.problems));
    const lastSeen = first.result.coverage.lastSegments['1'];
    assert.equal(lastSeen, first.result.wal!.lastSegment);

    await switchWal(2);
    const fresh = await backup('gzip', 'v-since-last');
    await switchWal(1);
    await archived();
    const freshTars = (await keysUnder(store, backupPrefix(SERVER, fresh.id))).filter((k) => /\.tar/.test(k));

    const second = await verify(store, server.pg.baseDir, 'main', ['--since-last', '--wal']);
    assert.equal(second.code, 0, JSON.stringify(second.result.problems));
    // The segments stored after the first run's last one, up to the newest this run saw (archiving goes on meanwhile).
    const newest = second.result.wal!.lastSegment!;
    const newSegments = (await keysUnder(store, `${SERVER}/wals/`)).filter((k) => /\/[0-9A-F]{24}$/.test(k) && k.slice(-24) > lastSeen && k.slice(-24) <= newest);
    assert.ok(newSegments.length >= 3, `the WAL switches made new segments: ${newSegments.length}`);
    assert.deepEqual(second.result.backups.map((b) => b.backupId), [fresh.id]);
    assert.equal(second.result.since?.key, first.result.storedAt);
    assert.equal(second.result.wal!.segmentsRead, newSegments.length);
    assert.ok(second.result.wal!.segmentsRead < second.result.wal!.segmentsInChain);
    assert.equal(second.result.objectsRead, freshTars.length + newSegments.length);
    assert.deepEqual(await keysUnder(store, verifyResultsPrefix(SERVER)), [first.result.storedAt, second.result.storedAt].sort());

    // No new backup: only segments archived since the second run (PostgreSQL may finish one meanwhile) are read.
    const third = await verify(store, server.pg.baseDir, 'main', ['--since-last', '--wal']);
    assert.equal(third.code, 0, JSON.stringify(third.result.problems));
    assert.deepEqual(third.result.backups, []);
    const later = (await keysUnder(store, `${SERVER}/wals/`)).filter((k) => /\/[0-9A-F]{24}$/.test(k) && k.slice(-24) > newest && k.slice(-24) <= third.result.wal!.lastSegment!);
    assert.equal(third.result.objectsRead, later.length);
    assert.ok(third.result.wal!.segmentsInChain > later.length);
  });

  it('refuses --since-last with --backup, and an unknown backup, with exit 2', async () => {
    const both = await pgark(['verify', '-f', server.manifest, '--since-last', '--backup', 'latest']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--since-last and --backup/);
    const unknown = await pgark(['verify', '-f', server.manifest, '--backup', 'no-such-backup']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown backup "no-such-backup"/);
  });
});
