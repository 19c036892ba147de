/**
 * The instance sidecar's catalog maintenance, as plugin-barman-cloud's sidecar does it: every
 * instanceSidecarConfiguration.retentionPolicyIntervalSeconds (default 1800) it applies the
 * ObjectStore's spec.retentionPolicy (with the entry's retentionRedundancy parameter) with the
 * CLI's retentionPass, then publishes the server's recovery window in the ObjectStore's status. Only the pod the Cluster names as
 * status.currentPrimary acts (read from the Cluster through the API, as the upstream sidecar does,
 * not from pg_is_in_recovery: a demoted primary that has not restarted yet would still say
 * "primary" to itself, the Cluster never names two). No WAL at or after the cluster's
 * SetFirstRequired floor is deleted, whatever the window says.
 */
import type { Logger } from 'pino';
import type { KubeObjectStores } from '../config/kube.js';
import { openObjectStore } from '../storage/open.js';
import { catalogWriteOptions, listBackups } from '../catalog/catalog.js';
import { clusterRetention } from '../catalog/retention.js';
import { retentionPass } from '../catalog/retention-run.js';
import { archivedWalFiles } from '../wal/list.js';
import { UserError } from '../util/errors.js';
import { readCluster, type PluginConfig } from './config.js';
import { targetStoreRef } from '../config/plugin-form.js';
import { readFirstRequired } from './first-required.js';
import { repeatUntilStopped, type Periodic } from './periodic.js';
import { recoveryWindowOf, withRecoveryWindow, type RecoveryWindow } from './recovery-window.js';

/** plugin-barman-cloud's default retentionPolicyIntervalSeconds. */
export const DEFAULT_INTERVAL_SECONDS = 1800;
/** After a failed cycle (Cluster or ObjectStore unreadable, store unreachable), as the upstream sidecar waits. */
export const RETRY_AFTER_FAILURE_SECONDS = 300;

export interface RetentionLoopConfig {
  /** The plugin's name in the Cluster's spec.plugins. */
  pluginName: string;
  /** CLUSTER_NAME and NAMESPACE, which the operator plugin puts in the sidecar's environment. */
  clusterName: string;
  namespace: string;
  /** This pod's name (POD_NAME). */
  podName: string;
  /** The Cluster's JSON as the API returns it, undefined when there is none. */
  readCluster(name: string, namespace: string): Promise<unknown | undefined>;
  /** ObjectStores and their Secrets, as the plugin's other services read them. */
  config: PluginConfig;
  objectStores: Pick<KubeObjectStores, 'updateStatus'>;
  log: Logger;
}

export type CycleOutcome =
  | { kind: 'skipped'; reason: string; nextSeconds: number }
  | { kind: 'done'; deleted: string[]; walDeleted: number; window: RecoveryWindow; nextSeconds: number };

/** One maintenance cycle; throws when something could not be read or written. */
export async function retentionCycle(cfg: RetentionLoopConfig): Promise<CycleOutcome> {
  const raw = await cfg.readCluster(cfg.clusterName, cfg.namespace);
  if (!raw) throw new UserError(`Cluster ${cfg.namespace}/${cfg.clusterName} not found`, 'CLUSTER_NAME and NAMESPACE must name the Cluster of this pod');
  const cluster = readCluster(raw as object);
  if (!(cluster.spec.plugins ?? []).some((p) => p.name === cfg.pluginName && p.enabled !== false)) {
    return { kind: 'skipped', reason: `the Cluster has no enabled spec.plugins entry "${cfg.pluginName}" (restore only)`, nextSeconds: DEFAULT_INTERVAL_SECONDS };
  }
  const ref = targetStoreRef(cluster, cfg.pluginName);
  const namespace = ref.namespace ?? cfg.namespace;
  const objectStore = await cfg.config.objectStore(ref.objectName, namespace);
  const nextSeconds = objectStore.spec.instanceSidecarConfiguration?.retentionPolicyIntervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const primary = (cluster as { status?: { currentPrimary?: string } }).status?.currentPrimary;
  if (primary !== cfg.podName) return { kind: 'skipped', reason: `not the current primary (${primary ?? 'none'})`, nextSeconds };

  const resolved = await cfg.config.resolve(ref);
  const store = await openObjectStore(resolved);
  try {
    const deleted: string[] = [];
    let walDeleted = 0;
    const policy = clusterRetention(cluster, objectStore.spec.retentionPolicy, cfg.pluginName);
    if (policy) {
      const floor = await readFirstRequired(store, ref.serverName);
      const pass = await retentionPass(store, ref.serverName, policy, archivedWalFiles(store, ref.serverName), {
        apply: true,
        write: catalogWriteOptions(resolved.config),
        walFloor: floor?.firstRequiredWal,
        onDeleted: (backupId) => {
          deleted.push(backupId);
          cfg.log.info({ backupId, server: ref.serverName }, 'retention deleted backup');
        },
      });
      if (!pass.applied && pass.plan.blockedBy.length > 0) {
        cfg.log.warn({ server: ref.serverName, unreadable: pass.plan.blockedBy.map((u) => u.backupId) }, 'retention not applied: unreadable backup.info');
      }
      walDeleted = pass.applied ? pass.plan.walFilesDeleted : 0;
    }
    const window = recoveryWindowOf(await listBackups(store, ref.serverName));
    await cfg.objectStores.updateStatus(ref.objectName, namespace, (status) => withRecoveryWindow(status, ref.serverName, window));
    return { kind: 'done', deleted, walDeleted, window, nextSeconds };
  } finally {
    await store.close();
  }
}

export type RetentionLoop = Periodic;

/** Runs a cycle now and then after each interval until stop(). A failed cycle is logged and retried sooner. */
export function startRetentionLoop(cfg: RetentionLoopConfig, onCycle?: (outcome: CycleOutcome | Error) => void): RetentionLoop {
  return repeatUntilStopped(() =>
    retentionCycle(cfg).then(
      (outcome) => {
        if (outcome.kind === 'skipped') cfg.log.debug({ reason: outcome.reason }, 'retention cycle skipped');
        onCycle?.(outcome);
        return outcome.nextSeconds;
      },
      (err: Error) => {
        cfg.log.error({ err: err.message }, 'retention cycle failed');
        onCycle?.(err);
        return RETRY_AFTER_FAILURE_SECONDS;
      },
    ),
  );
}
