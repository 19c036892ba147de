/**
 * Backup IDs are seconds (barman's YYYYMMDDTHHMMSS), so two backups started in the same second,
 * on one machine or several, would write the same base/<ID>/ and overwrite each other's tars.
 * Before writing anything a backup claims its ID with a claim object under base/<ID>/:
 *
 *   1. the ID of the current second is taken only if base/<ID>/ is empty;
 *   2. the backup writes base/<ID>/pgark-claim-<random> (a name of its own);
 *   3. it lists base/<ID>/ again and owns the ID only if its claim is the only object there.
 *
 * A claimant that sees anything else (another claim, tars, a backup.info) removes its claim and
 * tries the next second, so at most one backup of a second ever gets past step 3. Step 3 cannot
 * rely on a create-if-absent of one fixed name: on S3-compatible endpoints pgark's ifAbsent is a
 * HEAD then a PUT (storage/s3.ts), which two claimants can both pass; distinct names plus a
 * listing need only read-after-write listing, which file://, S3 and Azure all give.
 *
 * Taking the next free second rather than refusing is what a scheduler expects (a
 * ScheduledBackup with immediate: true next to an on-demand Backup must both run), and the ID
 * stays the second the backup really began in, never one in the future.
 *
 * The claim is deleted once backup.info (DONE or FAILED) is written. A killed backup leaves it
 * beside its tars: that directory is an incomplete backup (`pgark backup delete` removes it), and
 * since IDs only move forward with the clock a leftover claim never blocks a later backup.
 * barman-cloud ignores the claim: its catalog reads only base/<ID>/backup.info, and restore only
 * objects whose names start with data or a tablespace oid.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ObjectStore, PutOptions } from '../storage/types.js';
import { backupPrefix } from '../catalog/layout.js';
import { logger } from '../util/log.js';

const CLAIM_PREFIX = 'pgark-claim-';

/** barman's backup_id: YYYYMMDDTHHMMSS (UTC here, as in CNPG pods). */
export function backupIdFor(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/[-:]/g, '');
}

export interface BackupIdClaim {
  backupId: string;
  /** Removes the claim object once backup.info is written; a failure is logged, not thrown (the backup itself is recorded). */
  release(): Promise<void>;
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) keys.push(e.object.key);
  return keys;
}

/** Until the next second starts, plus a random part so claimants that collided do not collide again in lockstep. */
function untilNextSecond(now: number): number {
  return 1000 - (now % 1000) + Math.floor(Math.random() * 400);
}

async function releaseClaim(store: ObjectStore, key: string): Promise<void> {
  try {
    await store.delete([key]);
  } catch (err) {
    logger().warn({ key, err: (err as Error).message }, 'could not remove the backup id claim; pgark backup delete removes it with the backup');
  }
}

export async function claimBackupId(store: ObjectStore, serverName: string, writeOptions: PutOptions): Promise<BackupIdClaim> {
  for (;;) {
    const backupId = backupIdFor(new Date());
    const prefix = backupPrefix(serverName, backupId);
    if ((await keysUnder(store, prefix)).length === 0) {
      const key = `${prefix}${CLAIM_PREFIX}${randomBytes(8).toString('hex')}`;
      const owner = { host: hostname(), pid: process.pid, claimedAt: new Date().toISOString() };
      // With the backup's tags and encryption: an SSE-required bucket refuses any other write.
      await store.put(key, Buffer.from(`${JSON.stringify(owner)}\n`), writeOptions);
      const present = await keysUnder(store, prefix);
      if (present.length === 1 && present[0] === key) return { backupId, release: () => releaseClaim(store, key) };
      await store.delete([key]);
    }
    await new Promise((r) => setTimeout(r, untilNextSecond(Date.now())));
  }
}
