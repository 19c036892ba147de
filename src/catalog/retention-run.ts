/** `pgark retention`: read the catalog and WAL archive, plan, print, and (unless --dry-run) apply. */
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { openObjectStore } from '../storage/open.js';
import { archivedWalFiles } from '../wal/list.js';
import { logger } from '../util/log.js';
import { UserError } from '../util/errors.js';
import { catalogWriteOptions, listBackups } from './catalog.js';
import { applyRetention, parseRetentionPolicy, planFromCatalog, type RetentionPlan, type WalObject } from './retention.js';
import { planToJson, planToText } from './retention-report.js';

export interface RetentionRunOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  /** Overrides spec.backup.retentionPolicy. */
  policy?: string;
  dryRun: boolean;
  json: boolean;
}

export async function runRetention(opts: RetentionRunOptions): Promise<RetentionPlan> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = findCluster(ctx.manifests, opts.cluster);
  const policyText = opts.policy ?? cluster.spec.backup?.retentionPolicy;
  if (!policyText) {
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no spec.backup.retentionPolicy`,
      'set spec.backup.retentionPolicy (e.g. "30d") or pass --policy 30d',
    );
  }
  const policy = parseRetentionPolicy(policyText);
  const resolved = await clusterObjectStore(ctx, cluster);
  const store = await openObjectStore(resolved);
  try {
    const catalog = await listBackups(store, resolved.serverName);
    const wals: WalObject[] = [];
    for await (const w of archivedWalFiles(store, resolved.serverName)) wals.push(w);
    const plan = planFromCatalog(catalog, wals, policy, new Date());
    const apply = !opts.dryRun && plan.blockedBy.length === 0;
    if (apply) {
      const log = logger();
      await applyRetention(store, resolved.serverName, plan, {
        write: catalogWriteOptions(resolved.config),
        onProgress: (p) => {
          if (p.phase === 'deleted') log.info({ backupId: p.backupId, server: resolved.serverName }, 'retention deleted backup');
        },
      });
    }
    process.stdout.write(opts.json ? JSON.stringify(planToJson(plan, store.displayUrl, apply), null, 2) + '\n' : planToText(plan, store.displayUrl, apply));
    if (!opts.dryRun && plan.blockedBy.length > 0) {
      // Same refusal as applyRetention, after the plan was shown.
      await applyRetention(store, resolved.serverName, plan);
    }
    return plan;
  } finally {
    await store.close();
  }
}
