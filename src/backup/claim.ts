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
 * While the backup runs its claim is its heartbeat: the claim object is rewritten every
 * heartbeatSeconds (10 s by default, PGARK_CLAIM_HEARTBEAT_SECONDS), with that period in its
 * content, and a claim not refreshed for CLAIM_STALE_PERIODS periods (60 s by default) is stale.
 * A folder without backup.info whose claim is fresh is a running backup (STARTED): nothing may
 * delete it. One whose claim is stale is what a backup killed with SIGKILL left: incomplete, and
 * deletable. Freshness is the newer of the store's lastModified and the writer's own timestamp,
 * so a reader whose clock lags either of them errs towards "running", never "stale"; only a reader
 * clock running ahead of both by more than the stale period could take a live claim for stale.
 * Six periods let a heartbeat or two fail (a store briefly unreachable) without a live backup
 * ever looking stale. A heartbeat that finds its claim gone (someone deleted the folder anyway)
 * marks the claim lost, and the backup then fails rather than commit a backup with missing tars.
 *
 * The claim is deleted once the backup ends (after backup.info, DONE or FAILED, is written), and
 * since IDs only move forward with the clock a leftover claim never blocks a later backup.
 * barman-cloud ignores the claim: its catalog reads only base/<ID>/backup.info, and restore only
 * objects whose names start with data or a tablespace oid.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../storage/types.js';
import { backupPrefix } from '../catalog/layout.js';
import type { CatalogWriteOptions } from '../catalog/catalog.js';
import { CLAIM_PREFIX, type ClaimContent } from '../catalog/claims.js';
import { logger } from '../util/log.js';
import { PgarkError } from '../util/errors.js';
import { setting } from '../util/options.js';

/** barman's backup_id: YYYYMMDDTHHMMSS (UTC here, as in CNPG pods). */
export function backupIdFor(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/[-:]/g, '');
}

export interface BackupIdClaim {
  backupId: string;
  /** Throws when the claim was removed while the backup ran (its folder deleted): the backup must not be committed. */
  assertHeld(): Promise<void>;
  /** Stops the heartbeat and removes the claim once the backup has ended; a failure is logged, not thrown (the backup itself is recorded). */
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

function claimBody(owner: Omit<ClaimContent, 'refreshedAt'>): Buffer {
  return Buffer.from(`${JSON.stringify({ ...owner, refreshedAt: new Date().toISOString() })}\n`);
}

/** Rewrites the claim every period until stopped; notices when the claim has been deleted under it. */
function heartbeat(store: ObjectStore, key: string, owner: Omit<ClaimContent, 'refreshedAt'>, write: CatalogWriteOptions): { stop(): Promise<void>; lost(): boolean } {
  let lost = false;
  let beating: Promise<void> | undefined;
  const beat = async () => {
    try {
      // Rewriting a claim somebody deleted would make its emptied folder look running again.
      if (!(await store.head(key))) lost = true;
      else await store.put(key, claimBody(owner), write);
    } catch (err) {
      logger().warn({ key, err: (err as Error).message }, 'could not refresh the backup id claim; it turns stale if this lasts');
    } finally {
      beating = undefined;
    }
  };
  const timer = setInterval(() => {
    if (!lost && !beating) beating = beat();
  }, owner.heartbeatSeconds * 1000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await beating;
    },
    lost: () => lost,
  };
}

export async function claimBackupId(store: ObjectStore, serverName: string, write: CatalogWriteOptions = {}): Promise<BackupIdClaim> {
  const heartbeatSeconds = setting('claimHeartbeatSeconds');
  for (;;) {
    const backupId = backupIdFor(new Date());
    const prefix = backupPrefix(serverName, backupId);
    if ((await keysUnder(store, prefix)).length === 0) {
      const key = `${prefix}${CLAIM_PREFIX}${randomBytes(8).toString('hex')}`;
      const owner = { host: hostname(), pid: process.pid, claimedAt: new Date().toISOString(), heartbeatSeconds };
      await store.put(key, claimBody(owner), write);
      const present = await keysUnder(store, prefix);
      if (present.length === 1 && present[0] === key) {
        const beats = heartbeat(store, key, owner, write);
        return {
          backupId,
          assertHeld: async () => {
            if (beats.lost() || !(await store.head(key))) {
              throw new PgarkError(`the claim ${key} of backup ${backupId} was deleted while the backup ran, so its objects may have been deleted too; the backup is not committed`, 1);
            }
          },
          release: async () => {
            await beats.stop();
            await releaseClaim(store, key);
          },
        };
      }
      await store.delete([key]);
    }
    await new Promise((r) => setTimeout(r, untilNextSecond(Date.now())));
  }
}

async function releaseClaim(store: ObjectStore, key: string): Promise<void> {
  try {
    await store.delete([key]);
  } catch (err) {
    logger().warn({ key, err: (err as Error).message }, 'could not remove the backup id claim; pgark backup delete removes it with the backup');
  }
}
