/**
 * The CNPG-I RestoreJobHooks service (role restore, package cnpgi.wal.v1). CNPG's recovery Job
 * calls Restore once: pgark's recovery runs its pre-checks and downloads the backup into PGDATA,
 * and the answer tells CNPG's instance manager how to finish the recovery (recovery target
 * settings, promote, and a restore_command it relays to this plugin's WAL.Restore).
 *
 * The recovery domain (recovery/plan.ts, download.ts) works on a Cluster with barmanObjectStore
 * sections. A plugin Cluster names ObjectStores instead, so the call is translated into that
 * form: the recovery source's ObjectStore becomes externalClusters[source].barmanObjectStore and
 * the Cluster's own plugin store spec.backup.barmanObjectStore (the archive that must be empty).
 * Selection, every pre-check and the download are then exactly those of `pgark restore`, except
 * that PostgreSQL replays in the Job's postgres container, not beside pgark: the plan looks for no
 * local server binaries and checks the major version the Cluster says that container runs.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import type { Cluster, ResolvedObjectStore } from '../config/types.js';
import { ENCRYPTION_ANNOTATION, type EncryptionRef } from '../config/encryption.js';
import { validateDocument } from '../config/validate.js';
import { formatIssue, UserError, type SourcePosition } from '../util/errors.js';
import { SKIP_EMPTY_CHECK_ANNOTATION } from '../util/cnpg.js';
import { serverIdentity } from '../pg/local-server.js';
import { planRecovery, type ServerElsewhere } from '../recovery/plan.js';
import { imageMajor } from '../recovery/versions.js';
import { downloadBackup } from '../recovery/download.js';
import { CreatedDirectories } from '../recovery/directories.js';
import { quoteSetting } from '../recovery/settings.js';
import { recoveryTargetSettings, describeTarget } from '../recovery/target.js';
import type { Progress } from '../recovery/progress.js';
import { ArchiveNotEmptyError } from '../wal/empty-check.js';
import { untracked, type TransferTracker } from '../util/gc.js';
import { logger } from '../util/log.js';
import { InvalidRequestError, unary } from './calls.js';
import { recoveryStoreRef, targetStoreRef } from '../config/plugin-form.js';
import { readCluster, type PluginCluster, type PluginConfig } from './config.js';
import type { PluginContext } from './context.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

/** What CNPG's instance manager runs for restore_command in a plugin recovery; it relays to WAL.Restore. */
export const CNPG_RESTORE_COMMAND = '/controller/manager wal-restore --log-destination /controller/log/postgres.json %f %p';

const DEFAULT_JOBS = 4;

export interface RestoreCall {
  clusterDefinition: Buffer;
  /** Unset: an operator older than cnpg-i v0.6.0, so the Cluster's skip annotation decides. */
  checkEmptyWalArchive?: boolean;
}

export interface RestoreResponseMessage {
  restoreConfig: string;
  envs: string[];
}

export interface RestoreDeps {
  pluginName: string;
  /** Reads the ObjectStores the Cluster names; its ConfigContext resolves their Secrets for the recovery code too. */
  config: PluginConfig;
  /** The Job's PGDATA (--pgdata, else the postgres container's PGDATA as CNPG passes it to the sidecar). */
  pgdata: string;
  /** Told of the download while it runs (the sidecar's Buffer collector checks only then). */
  trackTransfer?: TransferTracker;
}

function recoverySection(cluster: PluginCluster): Record<string, unknown> {
  const rec = cluster.spec.bootstrap?.recovery;
  if (!rec) throw new InvalidRequestError('cluster_definition: spec.bootstrap.recovery is missing', 'RestoreJobHooks.Restore recovers a Cluster bootstrapped with recovery.source');
  return rec;
}

/** Whether the new cluster's archive must be empty: the operator's decision when it sent one. */
function checksEmptyArchive(call: RestoreCall, annotations: Record<string, string> | undefined): boolean {
  return call.checkEmptyWalArchive ?? annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] !== 'enabled';
}

const NO_POSITION: SourcePosition = { file: 'cluster_definition', line: 1, column: 1 };

/**
 * The plugin Cluster as the recovery domain reads it, validated by the same rules as a manifest
 * (recoveryTarget formats and exclusions), so a bad target is refused with its field path.
 */
async function recoveryCluster(call: RestoreCall, c: PluginCluster, source: ResolvedObjectStore, target: ResolvedObjectStore | undefined, encryption: EncryptionRef | undefined): Promise<Cluster> {
  const rec = recoverySection(c);
  const imageName = c.spec.imageName;
  const annotations = { ...(c.metadata.annotations ?? {}) };
  if (checksEmptyArchive(call, c.metadata.annotations)) delete annotations[SKIP_EMPTY_CHECK_ANNOTATION];
  else annotations[SKIP_EMPTY_CHECK_ANNOTATION] = 'enabled';
  // The in-tree copy names the source's keys the way a Cluster does (its plugin parameter may have named them).
  if (encryption) annotations[ENCRYPTION_ANNOTATION] = encryption.secret;
  const doc = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: c.metadata.name, ...(c.metadata.namespace ? { namespace: c.metadata.namespace } : {}), annotations },
    spec: {
      instances: 1,
      ...(typeof imageName === 'string' ? { imageName } : {}),
      bootstrap: { recovery: { source: rec.source, ...(rec.recoveryTarget ? { recoveryTarget: rec.recoveryTarget } : {}) } },
      externalClusters: [{ name: rec.source, barmanObjectStore: { ...source.config, serverName: source.serverName } }],
      ...(target ? { backup: { barmanObjectStore: { ...target.config, serverName: target.serverName } } } : {}),
    },
  };
  const result = await validateDocument({ file: 'cluster_definition', value: doc, position: NO_POSITION, locate: () => NO_POSITION });
  if (!result.manifest) {
    throw new InvalidRequestError(`cluster_definition: ${result.issues.map((i) => formatIssue({ ...i, position: undefined })).join('; ')}`);
  }
  return result.manifest as Cluster;
}

// The fields naming the image of the Job's postgres container (CNPG sends the whole Cluster, status included).
const imageFields = z.looseObject({
  spec: z.looseObject({ imageName: z.string().optional(), imageCatalogRef: z.looseObject({ major: z.number().int().optional() }).optional() }).default({}),
  status: z.looseObject({ image: z.string().optional() }).optional(),
});

/**
 * The PostgreSQL major of the Job's postgres container: spec.imageCatalogRef.major, else the tag
 * of spec.imageName, else of status.image (the image the operator resolved, e.g. its default).
 * None of them readable is refused: without it a backup of another major would be downloaded
 * and left in PGDATA for a server that refuses it.
 */
export function jobServerMajor(cluster: PluginCluster): ServerElsewhere {
  const parsed = imageFields.safeParse(cluster);
  const fields = parsed.success ? parsed.data : { spec: {}, status: undefined };
  const catalogMajor = fields.spec.imageCatalogRef?.major;
  if (catalogMajor !== undefined) return { major: catalogMajor, from: `spec.imageCatalogRef.major ${catalogMajor}` };
  for (const [field, image] of [['spec.imageName', fields.spec.imageName], ['status.image', fields.status?.image]] as const) {
    const major = image ? imageMajor(image) : undefined;
    if (major !== undefined) return { major, from: `${field} ${image}` };
  }
  throw new UserError(
    'the Cluster does not say which PostgreSQL major version its recovery Job runs (no spec.imageCatalogRef.major, and no image tag starting with a version in spec.imageName or status.image)',
    'set spec.imageName to an image tagged with its version (e.g. ghcr.io/cloudnative-pg/postgresql:16.4) or use spec.imageCatalogRef',
  );
}

/** recovery settings for CNPG's instance manager, one `name = 'value'` line each. */
export function restoreConfig(cluster: Cluster, restoreCommand: string): string {
  const settings: [string, string][] = [['recovery_target_action', 'promote'], ['restore_command', restoreCommand], ...recoveryTargetSettings(cluster.spec.bootstrap!.recovery!.recoveryTarget)];
  return settings.map(([k, v]) => `${k} = ${quoteSetting(v)}\n`).join('');
}

/** Progress of the download, as log lines (the Job's log is what a person reads). */
function logProgress(): Progress {
  const log = logger();
  return { step: (text: string) => log.info({ event: 'restore-step' }, text) };
}

/** Pre-check refusals name themselves as such: nothing was written, the request must change. */
function asPreCheckFailure(err: unknown, pgdata: string, pluginName: string): unknown {
  const prefix = `recovery pre-check failed, nothing was written to ${pgdata}`;
  if (err instanceof ArchiveNotEmptyError) {
    // The hint for manifests names spec.backup.barmanObjectStore; a plugin Cluster sets its folder in the plugin entry.
    return new UserError(
      `${prefix}: ${err.message}`,
      `set a new serverName in the parameters of the Cluster's spec.plugins entry "${pluginName}", or, if this archive really belongs to it, annotate the Cluster with ${SKIP_EMPTY_CHECK_ANNOTATION}: enabled`,
    );
  }
  if (err instanceof UserError) return new UserError(`${prefix}: ${err.message}`, err.hint);
  return err;
}

export async function runPluginRestore(deps: RestoreDeps, call: RestoreCall): Promise<RestoreResponseMessage> {
  const pgdata = resolve(deps.pgdata);
  const pluginCluster = readCluster(call.clusterDefinition);
  recoverySection(pluginCluster);
  const own = pluginCluster.spec.plugins?.some((p) => p.name === deps.pluginName && p.enabled !== false);
  // The new cluster's own archive is checked only when this plugin archives for it.
  const sourceRef = recoveryStoreRef(pluginCluster, deps.pluginName);
  const [source, target] = await Promise.all([
    deps.config.resolve(sourceRef),
    own ? deps.config.resolve(targetStoreRef(pluginCluster, deps.pluginName)) : undefined,
  ]);
  const cluster = await recoveryCluster(call, pluginCluster, source, target, sourceRef.encryption);
  const log = logger();
  let planned;
  try {
    planned = await planRecovery(deps.config.ctx, cluster, { pgdata, serverElsewhere: jobServerMajor(pluginCluster) });
  } catch (err) {
    throw asPreCheckFailure(err, pgdata, deps.pluginName);
  }
  const { plan, store } = planned;
  try {
    log.info(
      { event: 'restore-plan', backupId: plan.backup.backupId, target: describeTarget(plan.target), firstWal: plan.window.firstSegment, lastWal: plan.window.lastSegment, newArchive: plan.newArchive ?? null },
      `restoring backup ${plan.backup.backupId} (${plan.reason}) into ${pgdata}`,
    );
    const dirs = new CreatedDirectories();
    dirs.track(pgdata);
    for (const t of plan.backup.tablespaces) dirs.track(t.location);
    try {
      // As `pgark restore`: the source's data.jobs, else DEFAULT_JOBS tars at once.
      const jobs = plan.source.store.config.data?.jobs ?? DEFAULT_JOBS;
      const download = await (deps.trackTransfer ?? untracked)(downloadBackup(store, plan.backup, plan.objects, { pgdata, jobs, progress: logProgress(), who: serverIdentity(), age: plan.source.store.age }));
      log.info({ event: 'restore-downloaded', backupId: plan.backup.backupId, files: download.files, bytes: download.bytes, seconds: download.seconds, manifestVerified: download.verification.manifest }, 'backup restored into PGDATA');
    } catch (err) {
      dirs.removeAll();
      throw err;
    }
    return { restoreConfig: restoreConfig(cluster, CNPG_RESTORE_COMMAND), envs: [] };
  } finally {
    await store.close();
  }
}

export function restoreJobService(ctx: PluginContext): PluginService {
  const deps: RestoreDeps = { pluginName: ctx.name, config: ctx.config, pgdata: ctx.pg.pgdata!, trackTransfer: ctx.memory.trackTransfer };
  return {
    definition: serviceDefinition('restoreJob'),
    handlers: {
      GetCapabilities: unary('RestoreJobHooks.GetCapabilities', async () => ({ capabilities: [{ kind: 'KIND_RESTORE' }] })),
      Restore: unary('RestoreJobHooks.Restore', (req: RestoreCall) => runPluginRestore(deps, req)),
    },
  };
}
