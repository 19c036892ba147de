/**
 * `pgark retention`: one retention pass over the Cluster's store (its window and/or redundancy), its
 * plan printed with the rule keeping each backup, applied unless --dry-run.
 */
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { openObjectStore } from '../storage/open.js';
import { archivedWalFiles } from '../wal/list.js';
import { logger } from '../util/log.js';
import { UserError } from '../util/errors.js';
import { catalogWriteOptions } from '../catalog/catalog.js';
import { assertNotBlocked, clusterRetention, type RetentionPlan } from '../catalog/retention.js';
import { retentionPass } from '../catalog/retention-run.js';
import { planToJson, planToText } from '../catalog/retention-report.js';

export interface RetentionRunOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  /** Overrides the store's retention policy (spec.backup.retentionPolicy, or the ObjectStore's spec.retentionPolicy). */
  policy?: string;
  dryRun: boolean;
  json: boolean;
}

export async function runRetention(opts: RetentionRunOptions): Promise<RetentionPlan> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = findCluster(ctx.manifests, opts.cluster);
  const resolved = await clusterObjectStore(ctx, cluster);
  const policy = clusterRetention(cluster, opts.policy ?? resolved.retentionPolicy);
  if (!policy) {
    const field = resolved.fields?.retentionPolicy ?? 'spec.backup.retentionPolicy';
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no retention policy (${field}) nor redundancy (pgark.io/retention-redundancy annotation, retentionRedundancy parameter)`,
      `set ${field} (e.g. "30d"), annotate the Cluster with pgark.io/retention-redundancy: "N", or pass --policy 30d`,
    );
  }
  const store = await openObjectStore(resolved);
  try {
    const log = logger();
    const { plan, applied } = await retentionPass(store, resolved.serverName, policy, archivedWalFiles(store, resolved.serverName), {
      apply: !opts.dryRun,
      write: catalogWriteOptions(resolved.config),
      onDeleted: (backupId) => log.info({ backupId, server: resolved.serverName }, 'retention deleted backup'),
    });
    process.stdout.write(opts.json ? JSON.stringify(planToJson(plan, store.displayUrl, applied), null, 2) + '\n' : planToText(plan, store.displayUrl, applied));
    // A blocked plan is refused after it was shown, so the user sees what stood in the way.
    if (!opts.dryRun) assertNotBlocked(plan);
    return plan;
  } finally {
    await store.close();
  }
}
