/**
 * Block-level incremental backups (backup/incremental.ts, backup/block-map.ts, recovery/chain.ts)
 * on a real PostgreSQL 15 archiving into s3rver: a chain full -> incremental -> incremental
 * restores to the source's data, an incremental taken right after a full restores to the same
 * files, the incrementals store only what changed, and barman-cloud 3.4 still lists the store with
 * only the full backups in it. At block level, a chain whose relation files grow, shrink (VACUUM
 * truncation), appear and are dropped, with blocks of one file held by three members, restores
 * to the same files, byte for byte, as a full backup taken at the same point.
 * `pgark backup list|show` show the chains, and `pgark verify` checks an incremental with its
 * chain: a tar of the full it needs going missing fails the incremental's verification.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startStore, type TestStore } from '../harness/stores.js';
import { Crc32c } from '../../src/io/hash.js';
import { run, storeObjects } from './helpers.js';
import { archiveCurrentWal, backupOrigin, insertBatch, pgark, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from '../recovery/helpers.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { FileMap } from '../../src/catalog/incremental.js';

async function fileMap(store: TestStore, key: string): Promise<Map<string, FileMap['files'][number]>> {
  const os = await openObjectStore(store.resolved());
  try {
    const map = JSON.parse((await os.getBuffer(key)).toString('utf8')) as FileMap;
    return new Map(map.files.map((f) => [f.path, f]));
  } finally {
    await os.close();
  }
}

async function crcOf(path: string): Promise<number> {
  const crc = new Crc32c();
  for await (const chunk of createReadStream(path)) crc.update(chunk as Buffer);
  return crc.digest();
}

/** CRC-32C of every relation and catalog file of a restored data directory (the per-backup files left out). */
async function relationFiles(pgdata: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) await walk(path);
      else out.set(relative(pgdata, path), await crcOf(path));
    }
  };
  await walk(join(pgdata, 'base'));
  await walk(join(pgdata, 'global'));
  out.delete('global/pg_control');
  return out;
}

async function bytesUnder(store: TestStore, prefix: string): Promise<number> {
  return (await storeObjects(store, prefix)).filter((o) => /\.tar/.test(o.key)).reduce((n, o) => n + o.size, 0);
}

describe('incremental backups (block level, PostgreSQL 15)', () => {
  let store: TestStore;
  let origin: Origin;
  const restored: Recovered[] = [];
  const chain = { full: '', inc1: '', inc2: '' };

  /** Restores `backupId` without starting it: the relation files as the backup (or its chain) holds them. */
  async function restoredFiles(name: string, backupId: string): Promise<Map<string, number>> {
    const { result, recovered } = await restore(recoveryManifest(store, { name, sourceName: 'incr', recoveryTarget: { backupID: backupId }, noBackup: true }), ['--json']);
    restored.push(recovered);
    assert.equal(result.code, 0, result.stderr);
    return relationFiles(recovered.pgdata);
  }

  const differing = (a: Map<string, number>, b: Map<string, number>) => [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));

  before(async () => {
    store = await startStore('s3');
    origin = await startOrigin(store, { clusterName: 'incr' });
    await origin.pg.query('CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g');
    // Frozen now, so no autovacuum (late on a loaded machine) rewrites its 13 MiB between the first test's full and incremental.
    await origin.pg.query('VACUUM (FREEZE, ANALYZE) big');
    await archiveCurrentWal(origin.pg);
  });
  after(async () => {
    for (const r of restored) await r.destroy();
    await origin?.pg.destroy();
    await store?.stop();
  });

  it('full -> changes -> incremental -> changes -> incremental restores to the source, storing only changed files', async () => {
    const full = await backupOrigin(origin);
    await insertBatch(origin.pg, 1);
    const inc1 = await backupOrigin(origin, ['--type', 'incremental']);
    await insertBatch(origin.pg, 2);
    await origin.pg.query('UPDATE big SET payload = upper(payload) WHERE id % 1000 = 0');
    const inc2 = await backupOrigin(origin, ['--type', 'incremental']);
    Object.assign(chain, { full, inc1, inc2 });
    const want = await origin.pg.query<{ md5: string }>(`SELECT md5(string_agg(batch || ':' || id, ',' ORDER BY id)) AS md5 FROM rows`);
    const wantBig = await origin.pg.query<{ md5: string }>(`SELECT md5(string_agg(id || payload, ',' ORDER BY id)) AS md5 FROM big`);
    await archiveCurrentWal(origin.pg);

    const fullBytes = await bytesUnder(store, `incr/base/${full}/`);
    const inc1Bytes = await bytesUnder(store, `incr/pgark-incremental/${inc1}/`);
    assert.ok(fullBytes > 0 && inc1Bytes > 0, `${fullBytes} ${inc1Bytes}`);
    // The 200000-row table (about 13 MiB) did not change between the full and the first incremental.
    assert.ok(inc1Bytes < fullBytes / 4, `incremental ${inc1Bytes} bytes, full ${fullBytes}`);

    const { result, recovered } = await restore(recoveryManifest(store, { name: 'from-inc', sourceName: 'incr', recoveryTarget: { backupID: inc2 }, noBackup: true }), ['--start', '--json']);
    restored.push(recovered);
    assert.equal(result.code, 0, result.stderr);
    const got = await recovered.query<{ md5: string }>(`SELECT md5(string_agg(batch || ':' || id, ',' ORDER BY id)) AS md5 FROM rows`);
    const gotBig = await recovered.query<{ md5: string }>(`SELECT md5(string_agg(id || payload, ',' ORDER BY id)) AS md5 FROM big`);
    assert.equal(got[0].md5, want[0].md5);
    assert.equal(gotBig[0].md5, wantBig[0].md5);
  });

  it('an incremental taken with nothing changed since a full restores to the same files as that full', async () => {
    // Autovacuum would change catalog files between the two backups: the comparison is of pgark's copies, not of a moving source.
    await origin.pg.query('ALTER SYSTEM SET autovacuum = off');
    await origin.pg.query('SELECT pg_reload_conf()');
    await origin.pg.query('CHECKPOINT');
    const full = await backupOrigin(origin);
    const inc = await backupOrigin(origin, ['--type', 'incremental']);
    const fa = await restoredFiles('same-full', full);
    const fb = await restoredFiles('same-inc', inc);
    assert.ok(fa.size > 100, `${fa.size} files`);
    assert.deepEqual(differing(fa, fb), []);
  });

  it('barman-cloud-backup-list 3.4 lists only the full backups, none broken', async () => {
    const barman = store.barman!;
    const r = await run('barman-cloud-backup-list', [...barman.args, '--format', 'json', store.destinationPath, 'incr'], barman.env);
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout).backups_list as { backup_id: string; status: string }[];
    assert.ok(listed.length >= 2);
    assert.deepEqual(listed.map((b) => b.status).filter((s) => s !== 'DONE'), []);
    const incrementals = (await storeObjects(store, `incr/pgark-incremental/`)).filter((o) => o.key.endsWith('/backup.info'));
    assert.equal(incrementals.length, 3);
    for (const o of incrementals) assert.ok(!listed.some((b) => o.key.includes(b.backup_id)), `${o.key} listed by barman`);
  });

  it('backup list and show give each backup its type, parent, chain and chain size (human and --json)', async () => {
    const list = await pgark(['backup', 'list', '-f', origin.manifest, '--json']);
    assert.equal(list.code, 0, list.stderr);
    type Entry = { backup_id: string; pgark_type: string; pgark_parent_backup_id: string | null; pgark_chain: string[]; pgark_chain_size_bytes: number; pgark_size_bytes: number };
    const out = JSON.parse(list.stdout) as { backups_list: Entry[]; pgark_incrementals: Entry[] };
    // barman's list stays the full backups only, as CNPG parses it.
    assert.deepEqual(out.backups_list.map((b) => b.pgark_type).filter((t) => t !== 'full'), []);
    const full = out.backups_list.find((b) => b.backup_id === chain.full)!;
    assert.deepEqual([full.pgark_parent_backup_id, full.pgark_chain, full.pgark_chain_size_bytes], [null, [chain.full], full.pgark_size_bytes]);
    const byId = new Map(out.pgark_incrementals.map((b) => [b.backup_id, b]));
    const inc1 = byId.get(chain.inc1)!;
    const inc2 = byId.get(chain.inc2)!;
    assert.deepEqual([inc2.pgark_type, inc2.pgark_parent_backup_id, inc2.pgark_chain], ['incremental', chain.inc1, [chain.full, chain.inc1, chain.inc2]]);
    assert.equal(inc2.pgark_chain_size_bytes, full.pgark_size_bytes + inc1.pgark_size_bytes + inc2.pgark_size_bytes);

    const text = await pgark(['backup', 'list', '-f', origin.manifest]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID +NAME +STATUS +TYPE +PARENT .* SIZE +CHAIN SIZE /m);
    assert.match(text.stdout, new RegExp(`^${chain.inc2} +- +DONE +incremental +${chain.inc1} `, 'm'));
    assert.match(text.stdout, new RegExp(`^${chain.full} +- +DONE +full +- `, 'm'));

    const show = await pgark(['backup', 'show', '-f', origin.manifest, chain.inc2, '--json']);
    assert.equal(show.code, 0, show.stderr);
    const shown = Object.values(JSON.parse(show.stdout) as Record<string, Entry>)[0];
    assert.deepEqual(shown.pgark_chain, [chain.full, chain.inc1, chain.inc2]);
    assert.equal(shown.pgark_chain_size_bytes, inc2.pgark_chain_size_bytes);
  });

  it('pgark verify checks an incremental with its chain, and fails it when a tar of its full is gone', async () => {
    const good = await pgark(['verify', '-f', origin.manifest, '--backup', chain.inc2, '--json']);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const ok = JSON.parse(good.stdout) as { ok: boolean; backups: { backupId: string; manifestFiles: number | null; problems: unknown[] }[] };
    assert.equal(ok.backups[0].backupId, chain.inc2);
    assert.ok((ok.backups[0].manifestFiles ?? 0) > 100, `${ok.backups[0].manifestFiles} files matched the chain's manifest`);

    const os = await openObjectStore(store.resolved());
    try {
      const tar = (await storeObjects(store, `incr/base/${chain.full}/`)).find((o) => /\/data\.tar/.test(o.key))!;
      await os.delete([tar.key]);
    } finally {
      await os.close();
    }
    const bad = await pgark(['verify', '-f', origin.manifest, '--backup', chain.inc2, '--json']);
    assert.equal(bad.code, 1, bad.stderr);
    const report = JSON.parse(bad.stdout) as { ok: boolean; problems: { key: string; what: string }[] };
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.key.startsWith(`incr/base/${chain.full}/`)), JSON.stringify(report.problems));
    assert.ok(report.problems.some((p) => /is listed but was not in the backup's archives/.test(p.what)), 'the chain no longer holds every file of the manifest');
  });

  it('block level: files that grow, shrink, appear and go restore to what a full backup at the same point holds', async () => {
    const q = (sql: string) => origin.pg.query(sql);
    await q('ALTER SYSTEM SET autovacuum = off');
    await q('SELECT pg_reload_conf()');
    await q(`CREATE TABLE grow AS SELECT g AS id, repeat('g', 200) AS pad FROM generate_series(1, 5000) g`);
    await q(`CREATE TABLE shrink AS SELECT g AS id, repeat('s', 200) AS pad FROM generate_series(1, 10000) g`);
    await q('CREATE TABLE doomed AS SELECT g FROM generate_series(1, 50000) g');
    // Updates by index on a packed, frozen table: a sequential scan would set hint bits and prune on every page, and
    // free space left by the first test's updates would take the new row versions all over the file, changing every block.
    await q('CREATE INDEX ON big (id)');
    await q('VACUUM FULL big');
    await q('VACUUM (FREEZE, ANALYZE) big');
    await q('CHECKPOINT');
    const path = async (rel: string) => (await origin.pg.query<{ p: string }>(`SELECT pg_relation_filepath('${rel}') AS p`))[0].p;
    const files = { big: await path('big'), grow: await path('grow'), shrink: await path('shrink'), doomed: await path('doomed') };
    const a = await backupOrigin(origin);

    await q(`UPDATE big SET payload = 'b' || payload WHERE id BETWEEN 1000 AND 1100`);
    await q(`INSERT INTO grow SELECT g, repeat('G', 200) FROM generate_series(5001, 10000) g`);
    await q('CREATE TABLE fresh AS SELECT g FROM generate_series(1, 20000) g');
    const fresh = await path('fresh');
    const b = await backupOrigin(origin, ['--type', 'incremental']);

    await q(`UPDATE big SET payload = 'c' || payload WHERE id BETWEEN 150000 AND 150100`);
    await q('DELETE FROM shrink WHERE id > 4000');
    await q('VACUUM shrink');
    await q('DROP TABLE doomed');
    await q('CHECKPOINT');
    const c = await backupOrigin(origin, ['--type', 'incremental']);
    const d = await backupOrigin(origin);
    await archiveCurrentWal(origin.pg);

    const mapA = await fileMap(store, `incr/base/${a}/pgark-files.json`);
    const mapC = await fileMap(store, `incr/pgark-incremental/${c}/pgark-files.json`);
    // One file, blocks from three backups: the full's, B's and C's.
    const bigHolders = new Set(mapC.get(files.big)!.blocks!.runs!.map((r) => r[0]));
    assert.deepEqual([...bigHolders].sort(), [a, b, c].sort());
    assert.ok(mapC.get(files.grow)!.size > mapA.get(files.grow)!.size && mapC.get(files.grow)!.blocks!.runs, 'grow: larger, held in blocks');
    assert.ok(mapC.get(files.shrink)!.size < mapA.get(files.shrink)!.size && mapC.get(files.shrink)!.blocks!.runs, 'shrink: truncated by VACUUM, held in blocks');
    assert.equal(mapC.get(files.doomed), undefined);
    assert.deepEqual([mapC.get(fresh)!.holder, mapC.get(fresh)!.blocks!.runs], [b, undefined], 'fresh: new in B, stored whole there');
    // C stores a few blocks, not the 13 MB table: well under a fifth of the full taken right after it.
    const cBytes = await bytesUnder(store, `incr/pgark-incremental/${c}/`);
    const dBytes = await bytesUnder(store, `incr/base/${d}/`);
    assert.ok(cBytes < dBytes / 5, `incremental ${cBytes} bytes, full ${dBytes}`);

    const fc = await restoredFiles('blocks-inc', c);
    const fd = await restoredFiles('blocks-full', d);
    for (const f of [files.big, files.grow, files.shrink, fresh]) assert.ok(fc.has(f), `${f} restored`);
    assert.ok(!fc.has(files.doomed));
    assert.deepEqual(differing(fc, fd), []);

    const verified = await pgark(['verify', '-f', origin.manifest, '--backup', c, '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});
