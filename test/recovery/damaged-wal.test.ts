/**
 * `pgark restore --start` never reports success on WAL it could not replay (real PostgreSQL 15,
 * file:// and s3rver): one segment in the middle of the archive is cut short, padded, stored
 * under another segment's name, or has one byte flipped inside a record (which only PostgreSQL's
 * record CRC catches, ending replay early). Each restore must fail naming the segment, and must
 * not have switched the new cluster's archiving on; the intact archive restores every batch.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { walKey } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupOrigin, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from './helpers.js';

const BATCHES = [1, 2, 3, 4];
/** Offset of the first record's xl_xid in a segment that starts at a record (after a WAL switch). */
const FIRST_RECORD_XID = 44;

for (const kind of ['file', 's3'] as const) {
  describe(`restore --start on a damaged WAL archive (${kind})`, () => {
    let store: TestStore;
    let origin: Origin;
    let client: ObjectStore;
    /** The segment of batch 2: the archive holds the segments of batches 3 and 4 after it. */
    let victim: string;
    let intact: Buffer;
    const recovered: Recovered[] = [];
    let n = 0;

    after(async () => {
      for (const r of recovered) await r.destroy();
      await client?.close();
      await origin?.pg.destroy();
      await store?.stop();
    });

    async function setUp(): Promise<void> {
      store = await startStore(kind);
      origin = await startOrigin(store);
      await backupOrigin(origin);
      for (const b of BATCHES) {
        const [{ name }] = await origin.pg.query<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_insert_lsn()) AS name');
        await insertBatch(origin.pg, b);
        await archiveCurrentWal(origin.pg);
        if (b === 2) victim = name;
      }
      client = await openObjectStore(store.resolved(origin.clusterName));
      intact = await client.getBuffer(walKey(origin.clusterName, victim));
    }

    /** Restores with the victim segment replaced by `damaged`; puts the intact one back afterwards. */
    async function restoreWith(damaged: Buffer | undefined) {
      const key = walKey(origin.clusterName, victim);
      if (damaged) await client.put(key, damaged);
      try {
        const { result, recovered: r } = await restore(recoveryManifest(store, { name: `damaged-${kind}-${++n}`, sourceName: origin.clusterName }), ['--start']);
        recovered.push(r);
        return { result, r };
      } finally {
        if (damaged) await client.put(key, intact);
      }
    }

    async function expectFailure(damaged: Buffer, why: RegExp): Promise<void> {
      const { result, r } = await restoreWith(damaged);
      assert.notEqual(result.code, 0, `restore must fail:\n${result.stdout}`);
      assert.match(result.stderr, new RegExp(victim), `the message names ${victim}:\n${result.stderr}`);
      assert.match(result.stderr, why);
      const conf = readFileSync(join(r.pgdata, 'postgresql.auto.conf'), 'utf8');
      assert.doesNotMatch(conf, /^archive_command = '.*wal-archive/m, 'the new cluster never started archiving');
    }

    test('setup: backup, then one segment per batch', async () => {
      await setUp();
      assert.match(victim, /^00000001/);
      assert.equal(intact.readUInt32LE(16), 0, 'the victim starts at a record (xlp_rem_len 0)');
    });

    test('a segment cut short: PostgreSQL is stopped, the restore fails naming the object', async () => {
      await expectFailure(intact.subarray(0, 3 * 1024 * 1024 + 123), /recovery stopped: WAL object \S+ in .* is damaged: it is 3145851 bytes long/);
    });

    test('a segment padded with 8 KiB: the restore fails', async () => {
      await expectFailure(Buffer.concat([intact, Buffer.alloc(8192, 7)]), /is damaged: it is 16785408 bytes long/);
    });

    test('the next segment stored under this name (header mismatch): the restore fails', async () => {
      const next = await client.getBuffer(walKey(origin.clusterName, `${victim.slice(0, 16)}${(parseInt(victim.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, '0')}`));
      await expectFailure(next, /is damaged: its first page is for LSN /);
    });

    test('one flipped byte inside a record: PostgreSQL ends replay there, and the restore fails since the archive holds more', async () => {
      const flipped = Buffer.from(intact);
      flipped[FIRST_RECORD_XID] ^= 0x01;
      await expectFailure(flipped, new RegExp(`recovery stopped: WAL replay ended at \\S+ on timeline 1, at segment ${victim}, but the archive held WAL through [0-9A-F]{24} when the restore started`));
    });

    test('the intact archive: every batch restored', async () => {
      const { result, r } = await restoreWith(undefined);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await batches(r), BATCHES);
    });
  });
}
