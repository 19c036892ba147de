/**
 * The instance sidecar's catalog maintenance, as plugin-barman-cloud's sidecar does it: every
 * instanceSidecarConfiguration.retentionPolicyIntervalSeconds (default 1800) it applies the
 * ObjectStore's spec.retentionPolicy with the CLI's retentionPass, then publishes the server's
 * recovery window in the ObjectStore's status. Only the pod the Cluster names as
 * status.currentPrimary acts (read from the Cluster through the API, as the upstream sidecar does,
 * not from pg_is_in_recovery: a demoted primary that has not restarted yet would still say
 * "primary" to itself, the Cluster never names two). No WAL at or after the cluster's
 * SetFirstRequired floor is deleted, whatever the window says.
 */
import type { Logger } from 'pino';
import type { KubeCustomObject, KubeObjectStores } from '../config/kube.js';
import { objectStoreMissing } from '../config/kube.js';
import type { ResolvedObjectStore } from '../config/types.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { catalogWriteOptions, listBackups } from '../catalog/catalog.js';
import { parseRetentionPolicy } from '../catalog/retention.js';
import { retentionPass } from '../catalog/retention-run.js';
import { archivedWalFiles } from '../wal/list.js';
import { recoveryWindowOf, withRecoveryWindow, type RecoveryWindow } from './recovery-window.js';

/** plugin-barman-cloud's default retentionPolicyIntervalSeconds. */
export const DEFAULT_INTERVAL_SECONDS = 1800;
/** After a failed cycle (Cluster or ObjectStore unreadable, store unreachable), as the upstream sidecar waits. */
export const RETRY_AFTER_FAILURE_SECONDS = 300;

/** Which ObjectStore and server folder the Cluster's plugin entry names. */
export interface PluginTarget {
  objectStoreName: string;
  serverName: string;
}

export interface RetentionLoopConfig {
  clusterName: string;
  namespace: string;
  /** This pod's name (POD_NAME). */
  podName: string;
  readCluster(name: string, namespace: string): Promise<KubeCustomObject | undefined>;
  /** The Cluster's entry for this plugin, or undefined when the plugin is not enabled there for backups. */
  target(cluster: KubeCustomObject): PluginTarget | undefined;
  objectStores: KubeObjectStores;
  /** The ObjectStore's JSON made ready to open, its Secrets read. */
  resolve(objectStore: unknown, serverName: string, namespace: string): Promise<ResolvedObjectStore>;
  /** The first WAL the cluster still needs (SetFirstRequired), if it said. */
  firstRequired(store: ObjectStore, serverName: string): Promise<string | undefined>;
  log: Logger;
}

export type CycleOutcome =
  | { kind: 'skipped'; reason: string; nextSeconds: number }
  | { kind: 'done'; deleted: string[]; walDeleted: number; window: RecoveryWindow; nextSeconds: number };

/** One maintenance cycle; throws when something could not be read or written. */
export async function retentionCycle(cfg: RetentionLoopConfig): Promise<CycleOutcome> {
  const cluster = await cfg.readCluster(cfg.clusterName, cfg.namespace);
  if (!cluster) throw new Error(`Cluster "${cfg.clusterName}" not found in namespace "${cfg.namespace}"`);
  const target = cfg.target(cluster);
  if (!target) return { kind: 'skipped', reason: 'the plugin is not enabled for backups in the Cluster (restore only)', nextSeconds: DEFAULT_INTERVAL_SECONDS };
  const objectStore = (await cfg.objectStores.read(target.objectStoreName, cfg.namespace)) as
    | { spec?: { retentionPolicy?: string; instanceSidecarConfiguration?: { retentionPolicyIntervalSeconds?: number } } }
    | undefined;
  if (!objectStore) throw objectStoreMissing(target.objectStoreName, cfg.namespace);
  const nextSeconds = objectStore.spec?.instanceSidecarConfiguration?.retentionPolicyIntervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const primary = (cluster.status as { currentPrimary?: string } | undefined)?.currentPrimary;
  if (primary !== cfg.podName) return { kind: 'skipped', reason: `not the current primary (${primary ?? 'none'})`, nextSeconds };

  const resolved = await cfg.resolve(objectStore, target.serverName, cfg.namespace);
  const store = await openObjectStore(resolved);
  try {
    const deleted: string[] = [];
    let walDeleted = 0;
    const policyText = objectStore.spec?.retentionPolicy;
    if (policyText) {
      const walFloor = await cfg.firstRequired(store, target.serverName);
      const pass = await retentionPass(store, target.serverName, parseRetentionPolicy(policyText), archivedWalFiles(store, target.serverName), {
        apply: true,
        write: catalogWriteOptions(resolved.config),
        walFloor,
        onDeleted: (backupId) => {
          deleted.push(backupId);
          cfg.log.info({ backupId, server: target.serverName }, 'retention deleted backup');
        },
      });
      if (!pass.applied && pass.plan.blockedBy.length > 0) {
        cfg.log.warn({ server: target.serverName, unreadable: pass.plan.blockedBy.map((u) => u.backupId) }, 'retention not applied: unreadable backup.info');
      }
      walDeleted = pass.applied ? pass.plan.walFilesDeleted : 0;
    }
    const window = recoveryWindowOf(await listBackups(store, target.serverName));
    await cfg.objectStores.updateStatus(target.objectStoreName, cfg.namespace, (status) => withRecoveryWindow(status, target.serverName, window));
    return { kind: 'done', deleted, walDeleted, window, nextSeconds };
  } finally {
    await store.close();
  }
}

export interface RetentionLoop {
  /** Resolves after the cycle under way, if any, has finished; no cycle starts afterwards. */
  stop(): Promise<void>;
}

/** Runs a cycle now and then after each interval until stop(). A failed cycle is logged and retried sooner. */
export function startRetentionLoop(cfg: RetentionLoopConfig, onCycle?: (outcome: CycleOutcome | Error) => void): RetentionLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const run = () => {
    timer = undefined;
    running = retentionCycle(cfg).then(
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
    ).then((seconds) => {
      running = undefined;
      if (!stopped) timer = setTimeout(run, seconds * 1000);
    });
  };
  run();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
