/**
 * Where a recovery reads from, per spec.bootstrap.recovery:
 *  - source: NAME  -> externalClusters[NAME]'s store (its barmanObjectStore, or the ObjectStore its
 *    pgark.io / barman-cloud plugin section names), serverName defaulting to NAME;
 *  - backup: {name} -> the Cluster's own store (either form), the backup found by its
 *    backup_name (the Backup CR name) under the Cluster's serverName or any other server folder
 *    of the same destinationPath (a recovering cluster normally gets a new serverName).
 * Also enforces CNPG's webhook rules for the recovery section, so that a bad manifest is refused
 * before anything is read or written.
 */
import type { ConfigContext } from '../config/index.js';
import { annotationEncryption, backupStoreSpec, clusterStoreSpec, externalClusterObjectStore, resolveStoreSpec } from '../config/index.js';
import { SERVED_PLUGIN_NAMES } from '../config/plugin-form.js';
import type { BarmanObjectStoreConfiguration, Cluster, ResolvedObjectStore } from '../config/types.js';
import { ConfigError, UserError, type ManifestIssue } from '../util/errors.js';

export interface RecoverySource {
  kind: 'backup' | 'source';
  store: ResolvedObjectStore;
  /** The externalClusters entry, for `pgark wal-restore --source`. */
  externalCluster?: string;
  /** recovery.backup.name: the backup_name to look for. */
  backupName?: string;
  /** The Cluster manifest whose own store serves WAL when there is no externalCluster (`wal-restore --cluster`). */
  walCluster: string;
  /** backup.name in the recovering Cluster's own store: also look in the other server folders of its destinationPath. */
  searchOtherServers: boolean;
  /** WAL prefetch width (wal.maxParallel of the source store, 1 when unset). */
  maxParallel: number;
}

function issue(cluster: Cluster, path: string, message: string, hint?: string): ManifestIssue {
  return { path, message, hint, position: cluster.origin.positionOf(path) ?? cluster.origin.position };
}

/**
 * What pgark supports of spec.bootstrap.recovery, beyond CNPG's own rules (which the config layer
 * enforces on load): object-store sources only. Throws ConfigError / UserError.
 */
export function validateRecoverySpec(cluster: Cluster): void {
  const rec = cluster.spec.bootstrap?.recovery;
  const base = 'spec.bootstrap.recovery';
  if (!rec) {
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no spec.bootstrap.recovery section`,
      'pgark restore recovers a Cluster whose manifest says where from: bootstrap.recovery.source (an externalClusters entry) or bootstrap.recovery.backup.name',
    );
  }
  const issues: ManifestIssue[] = [];
  if (rec.volumeSnapshots) issues.push(issue(cluster, `${base}.volumeSnapshots`, 'recovery from volume snapshots is not supported by pgark', 'use source or backup'));
  if (rec.source) {
    const ext = cluster.spec.externalClusters?.find((e) => e.name === rec.source);
    if (ext && !ext.barmanObjectStore && !(ext.plugin && SERVED_PLUGIN_NAMES.includes(ext.plugin.name))) {
      const i = cluster.spec.externalClusters!.indexOf(ext);
      issues.push(
        issue(
          cluster,
          `spec.externalClusters.${i}`,
          `externalCluster "${ext.name}" has no barmanObjectStore nor a ${SERVED_PLUGIN_NAMES.join(' / ')} plugin section`,
          'pgark recovers from object stores only (not from a running server via connectionParameters)',
        ),
      );
    }
  }
  if (issues.length) throw new ConfigError(issues);
}

export async function resolveRecoverySource(ctx: ConfigContext, cluster: Cluster): Promise<RecoverySource> {
  validateRecoverySpec(cluster);
  const rec = cluster.spec.bootstrap!.recovery!;
  if (rec.source) {
    const store = await externalClusterObjectStore(ctx, cluster, rec.source);
    return { kind: 'source', store, externalCluster: rec.source, walCluster: cluster.metadata.name, searchOtherServers: false, maxParallel: parallelOf(store.config) };
  }
  const name = rec.backup!.name;
  // Like CNPG reading the Backup CR's status: the Backup manifest names the Cluster whose store holds it.
  const backupCr = ctx.manifests.backups.find((b) => b.metadata.name === name);
  const origin = backupCr && ctx.manifests.clusters.find((c) => c !== cluster && c.metadata.name === backupCr.spec.cluster.name);
  const originSpec = origin && clusterStoreSpec(ctx.manifests, origin) && backupStoreSpec(ctx.manifests, origin, backupCr);
  if (originSpec) {
    // The recovering Cluster's keys read the store when it names some (it is the one being set up), else the origin's.
    const store = await resolveStoreSpec(ctx, { ...originSpec, encryption: annotationEncryption(cluster) ?? originSpec.encryption });
    return { kind: 'backup', store, backupName: name, walCluster: origin.metadata.name, searchOtherServers: false, maxParallel: parallelOf(store.config) };
  }
  const own = clusterStoreSpec(ctx.manifests, cluster);
  if (!own) {
    throw new UserError(
      `recovery.backup.name "${name}": Cluster "${cluster.metadata.name}" has no store to find the backup in (spec.backup.barmanObjectStore or a pgark.io plugin entry)`,
      `add the Cluster's store (the one the backup was taken to), or pass the Backup manifest "${name}" and its Cluster's manifest with -f`,
    );
  }
  const store = await resolveStoreSpec(ctx, own);
  return { kind: 'backup', store, backupName: name, walCluster: cluster.metadata.name, searchOtherServers: true, maxParallel: parallelOf(store.config) };
}

function parallelOf(cfg: BarmanObjectStoreConfiguration): number {
  return Math.max(1, cfg.wal?.maxParallel ?? 1);
}

/** "externalClusters[old] s3://bucket/path server old" for humans (no credentials). */
export function describeSource(src: RecoverySource, displayUrl: string, serverName: string): string {
  const what = src.kind === 'source' ? `externalClusters "${src.externalCluster}"` : `backup "${src.backupName}"`;
  return `${what}: ${displayUrl} server "${serverName}"`;
}
