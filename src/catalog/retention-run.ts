/**
 * One retention pass over a server's store, shared by `pgark retention` and the agent so that both
 * decide and delete the same way: read the catalog and the WAL objects, plan against the policy
 * and, when asked, apply the plan. The caller lists the WAL (the catalog layer does not depend on
 * the WAL code) and reports the outcome.
 */
import type { ObjectStore } from '../storage/types.js';
import { listBackups, type Catalog, type CatalogWriteOptions } from './catalog.js';
import { listIncrementals } from './incremental.js';
import { applyRetention, planFromCatalog, type RetentionPlan, type RetentionPolicy, type WalObject } from './retention.js';

export interface RetentionPass {
  catalog: Catalog;
  plan: RetentionPlan;
  /** Whether the plan was carried out. */
  applied: boolean;
}

export interface RetentionPassOptions {
  /** false plans only (--dry-run). A plan blocked by an unreadable backup.info is never applied: see assertNotBlocked. */
  apply: boolean;
  write: CatalogWriteOptions;
  onDeleted?: (backupId: string) => void;
  /** No WAL at or after this one is deleted (see PlanInput.walFloor). */
  walFloor?: string;
}

export async function retentionPass(
  store: ObjectStore,
  serverName: string,
  policy: RetentionPolicy,
  walFiles: AsyncIterable<WalObject>,
  opts: RetentionPassOptions,
): Promise<RetentionPass> {
  const catalog = await listBackups(store, serverName);
  const wals: WalObject[] = [];
  for await (const w of walFiles) wals.push(w);
  const plan = planFromCatalog(catalog, wals, policy, new Date(), { walFloor: opts.walFloor }, await listIncrementals(store, serverName));
  const applied = opts.apply && plan.blockedBy.length === 0;
  if (applied) {
    await applyRetention(store, serverName, plan, {
      write: opts.write,
      onProgress: (p) => {
        if (p.phase === 'deleted') opts.onDeleted?.(p.backupId);
      },
    });
  }
  return { catalog, plan, applied };
}
