/** Glue between `pgark restore` and the recovery modules: manifests in, recovery or finish out. */
import { clusterStoreSpec, findCluster, loadContext } from '../config/index.js';
import type { Cluster, ManifestSet } from '../config/types.js';
import { runRecovery, type RecoveryOptions, type RecoveryResult } from './apply.js';
import { finishRecovery } from './finish.js';

/** The Cluster to recover: --cluster, else the only one with bootstrap.recovery, else the only one. */
export function recoveryCluster(set: ManifestSet, name?: string): Cluster {
  if (name) return findCluster(set, name);
  const recovering = set.clusters.filter((c) => c.spec.bootstrap?.recovery);
  return recovering.length === 1 ? recovering[0] : findCluster(set);
}

export async function recoverFromManifests(opts: { files: string[]; secretsDir?: string; cluster?: string; recovery: RecoveryOptions }): Promise<RecoveryResult> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = recoveryCluster(ctx.manifests, opts.cluster);
  return runRecovery(ctx, cluster, { ...opts.recovery, manifestFiles: opts.files, secretsDir: opts.secretsDir });
}

/** recovery_end_command of a restore that did not write --archive-after (an older pgark's): the manifests say. */
export async function finishRecoveryFromManifests(opts: { files: string[]; secretsDir?: string; cluster?: string; pgdata: string; archiveEnd?: string; archiveAfter?: 'on' | 'off' }): Promise<void> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = recoveryCluster(ctx.manifests, opts.cluster);
  finishRecovery({
    pgdata: opts.pgdata,
    ref: { files: opts.files, secretsDir: opts.secretsDir },
    cluster: ctx.manifests.clusters.length > 1 ? cluster.metadata.name : undefined,
    archives: opts.archiveAfter ? opts.archiveAfter === 'on' : clusterStoreSpec(ctx.manifests, cluster) !== undefined,
    archiveEnd: opts.archiveEnd,
  });
}
