/**
 * The recovery plan and every pre-check, before a byte is downloaded or written:
 *  1. the data directory is empty or absent (Initial Bootstrap Only), and so is every tablespace
 *     location of the backup chosen in 2;
 *  2. the backup exists and is DONE (chosen per recoveryTarget, or by backup.name);
 *  3. its PostgreSQL major matches the imageName tag and the local binaries (or, when the server
 *     runs elsewhere, the major the caller states for it);
 *  4. the new cluster's own archive (backup.barmanObjectStore + serverName) holds no WAL
 *     ("Expected empty archive"), unless cnpg.io/skipEmptyWalArchiveCheck: enabled;
 *  5. the WAL archive holds begin_wal and is continuous to the end of the backup and to the target.
 */
import { assertDecodable, splitCodecSuffix, startDecodeThread } from '../codec/index.js';
import type { ConfigContext } from '../config/index.js';
import { clusterObjectStore, clusterStoreSpec } from '../config/index.js';
import type { Cluster } from '../config/types.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import { backupObjects, loadBackups, type BackupObject } from './catalog-view.js';
import { assertEmptyOrAbsent } from './directories.js';
import { chainObjects } from './chain.js';
import { checkDeltaTarget } from './delta.js';
import { formatLsn } from '../pg/lsn.js';
import { describeBackups, selectBackup, type RecoveryBackup } from './select-backup.js';
import { describeSource, resolveRecoverySource, type RecoverySource } from './source.js';
import { describeTarget, parseRecoveryTarget, type ParsedTarget } from './target.js';
import { checkImageMajor, localBinariesFor, majorOfVersionNum } from './versions.js';
import { computeWindow, latestTimeline, listArchive, timelinePath, type ReplayWindow } from './wal-window.js';
import type { PgBinaries } from '../pg/binaries.js';
import { checkEmptyArchive } from '../wal/empty-check.js';
import { SKIP_EMPTY_CHECK_ANNOTATION } from '../util/cnpg.js';

/** The coarsest modification-time resolution among the stores: whole seconds. */
const STORE_MTIME_RESOLUTION_MS = 1000;

/** Rough rates for the time estimate (documented in docs/recovery.md): download and WAL replay. */
const ESTIMATE_DOWNLOAD_BYTES_PER_SECOND = 80 * 1024 * 1024;
const ESTIMATE_REPLAY_BYTES_PER_SECOND = 40 * 1024 * 1024;
const ESTIMATE_SECONDS_PER_SEGMENT_FETCH = 0.3;

/** Every fact of a plan, whichever server will replay it. */
export interface PlanFacts {
  cluster: Cluster;
  pgdata: string;
  source: RecoverySource;
  sourceDescription: string;
  /** Server folder the backup and its WAL are in (differs from source.store.serverName when found elsewhere). */
  sourceServerName: string;
  backup: RecoveryBackup;
  reason: string;
  major: number;
  objects: BackupObject[];
  downloadBytes: number;
  target: ParsedTarget;
  window: ReplayWindow;
  earliest: { backupId: string; time?: Date; lsn?: bigint };
  /** The new cluster's own archive after promotion, or undefined when it has no backup section. */
  newArchive?: { displayUrl: string; serverName: string; emptyCheck: 'passed' | 'skipped by annotation' };
  estimateSeconds: number;
}

/** A plan whose server runs here: the local binaries that will replay it. */
export interface RecoveryPlan extends PlanFacts {
  binaries: PgBinaries;
}

/**
 * The server that will replay runs in another container (CNPG's recovery Job: pgark downloads,
 * CNPG's postgres container replays): no local binaries are looked for; its major version, as
 * the caller read it (`from` names where, for the refusal), must be the backup's.
 */
export interface ServerElsewhere {
  major: number;
  from: string;
}

export interface PlanOptions {
  pgdata: string;
  /** Unset: the server runs here and needs local binaries of the backup's major. */
  serverElsewhere?: ServerElsewhere;
  /** Restore over an existing data directory of the same system (delta.ts). */
  delta?: boolean;
}

/** Runs every pre-check and returns the plan; writes nothing. The source store is returned open. */
export async function planRecovery(ctx: ConfigContext, cluster: Cluster, opts: PlanOptions & { serverElsewhere: ServerElsewhere }): Promise<{ plan: PlanFacts; store: ObjectStore }>;
export async function planRecovery(ctx: ConfigContext, cluster: Cluster, opts: PlanOptions & { serverElsewhere?: undefined }): Promise<{ plan: RecoveryPlan; store: ObjectStore }>;
export async function planRecovery(ctx: ConfigContext, cluster: Cluster, opts: PlanOptions): Promise<{ plan: PlanFacts | RecoveryPlan; store: ObjectStore }> {
  const source = await resolveRecoverySource(ctx, cluster);
  if (!opts.delta) assertEmptyOrAbsent(opts.pgdata, 'data directory');
  const store = await openObjectStore(source.store);
  try {
    const plan = await planWithStore(ctx, cluster, opts, source, store);
    return { plan, store };
  } catch (err) {
    await store.close();
    throw err;
  }
}

function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

async function planWithStore(ctx: ConfigContext, cluster: Cluster, opts: PlanOptions, source: RecoverySource, store: ObjectStore): Promise<PlanFacts | RecoveryPlan> {
  const rt = cluster.spec.bootstrap!.recovery!.recoveryTarget;
  const target = parseRecoveryTarget(rt);
  const found = source.kind === 'backup' ? await findNamedBackup(store, source) : undefined;
  const sourceServerName = found?.serverName ?? source.store.serverName;
  const sourceDescription = describeSource(source, store.displayUrl, sourceServerName);
  const backups = found ? [found.backup] : await loadBackups(store, sourceServerName);
  const choice = found
    ? { backup: found.backup, reason: `recovery.backup.name "${source.backupName}" is its backup_name` }
    : selectBackup(backups, target, rt !== undefined, `${store.displayUrl} server "${sourceServerName}"`);
  let backup = choice.backup;
  if (backup.status !== 'DONE') throw new UserError(`backup ${backup.backupId} has status ${backup.status}; only DONE backups can be restored`);
  if (!backup.version || !backup.beginWal || !backup.endWal) throw new UserError(`backup ${backup.backupId} lacks version/begin_wal/end_wal in its backup.info; it cannot be restored`);

  // pgark's backup.info names its objects, codec suffix included: the decoder's thread then starts
  // now, beside the local checks and the round trips below, not once the backup's folder is listed.
  for (const name of Object.keys(backup.objectSha256 ?? {})) startDecodeThread(splitCodecSuffix(name).codec);
  const major = majorOfVersionNum(backup.version);
  checkImageMajor(cluster.spec.imageName, major, backup.backupId);
  if (opts.serverElsewhere) checkServerMajor(opts.serverElsewhere, major, backup.backupId);
  if (opts.delta) await checkDeltaTarget(opts.pgdata, backup);
  for (const t of backup.tablespaces) assertEmptyOrAbsent(t.location, `tablespace "${t.name}" location`);

  // The local binaries' `postgres --version` and three independent sets of round trips to the
  // stores: run side by side, and their failures reported in the order of the pre-checks
  // (docs/recovery.md; the first that fails, as when they ran in turn).
  const chosen = backup;
  const [binariesCheck, archiveCheck, walCheck, objectList] = await Promise.allSettled([
    opts.serverElsewhere ? undefined : localBinariesFor(major, backup.backupId),
    checkNewArchive(ctx, cluster),
    (async () => {
      const inventory = await listArchive(store, sourceServerName, chosen.segmentSize);
      const timeline = typeof target.timeline === 'number' ? target.timeline : latestTimeline(inventory, chosen.timeline ?? 1);
      const path = await timelinePath(store, inventory, timeline, source.store.age);
      const window = computeWindow(inventory, chosen, path);
      checkReachable(chosen, target, window, sourceServerName);
      return window;
    })(),
    (chosen.parentBackupId
      ? (async () => chainObjects(store, sourceServerName, chosen, found ? await loadBackups(store, sourceServerName) : backups))()
      : backupObjects(store, sourceServerName, chosen).then((objects) => ({ objects, objectSha256: chosen.objectSha256 }))
    ).then((list) => {
      // The decoder's thread starts while the other pre-checks still wait on the store (decode-thread.ts),
      // unless backup.info's names started it above.
      for (const o of list.objects) startDecodeThread(o.codec);
      return list;
    }),
  ]);
  const binaries = settled(binariesCheck);
  const newArchive = settled(archiveCheck);
  const window = settled(walCheck);
  const { objects, objectSha256 } = settled(objectList);
  backup = { ...backup, objectSha256 };
  for (const o of objects) assertDecodable(o, source.store.age, o.key);
  const downloadBytes = objects.reduce((n, o) => n + o.size, 0);
  const earliestBackup = backups.filter((b) => b.status === 'DONE' && b.endTime).sort((a, b) => a.endTime!.getTime() - b.endTime!.getTime())[0] ?? backup;
  const estimateSeconds =
    downloadBytes / ESTIMATE_DOWNLOAD_BYTES_PER_SECOND +
    window.bytesToReplay / ESTIMATE_REPLAY_BYTES_PER_SECOND +
    (window.segmentsToReplay * ESTIMATE_SECONDS_PER_SEGMENT_FETCH) / source.maxParallel;
  return {
    cluster,
    pgdata: opts.pgdata,
    source,
    sourceDescription,
    sourceServerName,
    backup,
    reason: choice.reason,
    major,
    ...(binaries ? { binaries } : {}),
    objects,
    downloadBytes,
    target,
    window,
    earliest: { backupId: earliestBackup.backupId, time: earliestBackup.endTime, lsn: earliestBackup.endLsn },
    newArchive,
    estimateSeconds,
  };
}

/** The replaying server elsewhere must be the backup's major: PostgreSQL refuses a data directory of another. */
function checkServerMajor(server: ServerElsewhere, backupMajor: number, backupId: string): void {
  if (server.major === backupMajor) return;
  throw new UserError(
    `${server.from} is PostgreSQL ${server.major}, but backup ${backupId} was taken from PostgreSQL ${backupMajor}`,
    `a physical backup can only be recovered by the same major version: recover with PostgreSQL ${backupMajor}, then upgrade`,
  );
}

/** backup.name: the backup whose backup_name (or ID) it is, in the store's server folder(s). */
async function findNamedBackup(store: ObjectStore, source: RecoverySource): Promise<{ backup: RecoveryBackup; serverName: string }> {
  const name = source.backupName!;
  const servers = [source.store.serverName];
  if (source.searchOtherServers) {
    for await (const entry of store.list('', { delimiter: '/' })) {
      const folder = entry.prefix?.slice(0, -1);
      if (folder && !servers.includes(folder)) servers.push(folder);
    }
  }
  const matches: { backup: RecoveryBackup; serverName: string }[] = [];
  const seen: string[] = [];
  for (const serverName of servers) {
    const backups = await loadBackups(store, serverName).catch(() => [] as RecoveryBackup[]);
    if (backups.length) seen.push(`server "${serverName}":\n${describeBackups(backups)}`);
    for (const b of backups) if (b.backupName === name || b.backupId === name) matches.push({ backup: b, serverName });
  }
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new UserError(
      `backup name "${name}" is ambiguous in ${store.displayUrl}: ${matches.map((m) => `${m.serverName}/${m.backup.backupId}`).join(', ')}`,
      'use recovery.source with an externalClusters entry naming the serverName, and recoveryTarget.backupID',
    );
  }
  throw new UserError(
    `no backup named "${name}" in ${store.displayUrl} (looked in server ${servers.map((s) => `"${s}"`).join(', ')})`,
    seen.length ? `backups found:\n${seen.join('\n')}` : 'the store holds no backups',
  );
}

/** Pre-check 5: "Expected empty archive" on the new cluster's own store. */
async function checkNewArchive(ctx: ConfigContext, cluster: Cluster): Promise<RecoveryPlan['newArchive']> {
  if (!clusterStoreSpec(ctx.manifests, cluster)) return undefined;
  const own = await clusterObjectStore(ctx, cluster);
  const ownStore = await openObjectStore(own);
  try {
    if (cluster.metadata.annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] === 'enabled') {
      return { displayUrl: ownStore.displayUrl, serverName: own.serverName, emptyCheck: 'skipped by annotation' };
    }
    await checkEmptyArchive(ownStore, own.serverName, { serverNameField: own.fields?.serverName });
    return { displayUrl: ownStore.displayUrl, serverName: own.serverName, emptyCheck: 'passed' };
  } finally {
    await ownStore.close();
  }
}

function windowText(backup: RecoveryBackup, window: ReplayWindow): string {
  const from = `${backup.endTime?.toISOString() ?? '?'} (${backup.endLsn !== undefined ? formatLsn(backup.endLsn) : backup.endWal}, end of backup ${backup.backupId})`;
  const to = window.latestLsn !== undefined ? `${window.latestTime?.toISOString() ?? '?'} (${formatLsn(window.latestLsn)}, end of ${window.lastSegment})` : 'nothing (begin_wal is missing)';
  return `recoverable window from this backup on timeline ${window.targetTimeline}: ${from} .. ${to}`;
}

/** Pre-check 6: begin_wal present, WAL continuous through the end of the backup and up to the target. */
export function checkReachable(backup: RecoveryBackup, target: ParsedTarget, window: ReplayWindow, serverName: string): void {
  const range = windowText(backup, window);
  if (!window.lastSegment) {
    throw new UserError(
      `the WAL archive of server "${serverName}" lacks ${window.firstSegment}, the first WAL of backup ${backup.backupId} (begin_wal ${backup.beginWal})`,
      'the backup cannot be made consistent without it; check that WAL archiving worked while the backup ran',
    );
  }
  if (!window.coversBackupEnd) {
    throw new UserError(
      `the WAL archive of server "${serverName}" has a gap: ${window.gapAt ?? 'the segment after ' + window.lastSegment} is missing before ${window.backupEndSegment} (end_wal of backup ${backup.backupId})`,
      `the backup needs WAL ${window.firstSegment} .. ${window.backupEndSegment} to be consistent`,
    );
  }
  const gap = window.gapAt ? `; the archive continues after a gap at ${window.gapAt}, which replay cannot cross` : '';
  if (target.kind === 'time') {
    const t = target.time!.getTime();
    if (backup.endTime && t < backup.endTime.getTime()) {
      throw new UserError(`targetTime ${target.value} is before the end of backup ${backup.backupId} (${backup.endTime.toISOString()})`, `${range}; pick a time inside it or an older backup`);
    }
    // Stores report modification times in whole seconds (S3's listing, HTTP Last-Modified): the last
    // segment may have been stored up to a second after the time read, so a target within that second
    // may still be reached and is not refused.
    if (window.latestTime && t >= window.latestTime.getTime() + STORE_MTIME_RESOLUTION_MS) {
      throw new UserError(
        `targetTime ${target.value} is after the last archived WAL (${window.lastSegment}, stored ${window.latestTime.toISOString()}): PostgreSQL would replay everything and stop without reaching it`,
        `${range}${gap}; pick a time inside it, or remove targetTime to recover to the end of the archive`,
      );
    }
  }
  if (target.kind === 'lsn') {
    if (backup.endLsn !== undefined && target.lsn! < backup.endLsn) {
      throw new UserError(`targetLSN ${target.value} is before the end of backup ${backup.backupId} (${formatLsn(backup.endLsn)})`, `${range}`);
    }
    if (target.lsn! >= window.latestLsn!) {
      throw new UserError(`targetLSN ${target.value} is beyond the end of the continuous WAL archive (${formatLsn(window.latestLsn!)})`, `${range}${gap}`);
    }
  }
}

/** The plan as shown by --dry-run / --json (no credentials, no internal objects). */
export function planSummary(plan: RecoveryPlan): Record<string, unknown> {
  const b = plan.backup;
  const w = plan.window;
  return {
    cluster: plan.cluster.metadata.name,
    pgdata: plan.pgdata,
    source: plan.sourceDescription,
    serverName: plan.sourceServerName,
    backup: {
      id: b.backupId,
      name: b.backupName ?? null,
      reason: plan.reason,
      beginTime: b.beginTime?.toISOString() ?? null,
      endTime: b.endTime?.toISOString() ?? null,
      beginWal: b.beginWal,
      endWal: b.endWal,
      timeline: b.timeline ?? null,
      postgresMajor: plan.major,
      downloadBytes: plan.downloadBytes,
      objects: plan.objects.map((o) => ({ key: o.key, size: o.size, codec: o.codec })),
      tablespaces: b.tablespaces,
    },
    target: describeTarget(plan.target),
    wal: {
      timeline: w.targetTimeline,
      timelinePath: w.path.map((s) => ({ timeline: s.timeline, begins: formatLsn(s.begin) })),
      first: w.firstSegment,
      backupEnd: w.backupEndSegment,
      last: w.lastSegment ?? null,
      gapAt: w.gapAt ?? null,
      segments: w.segmentsToReplay,
      bytes: w.bytesToReplay,
      prefetch: plan.source.maxParallel,
    },
    recoverable: {
      earliest: { backup: plan.earliest.backupId, time: plan.earliest.time?.toISOString() ?? null, lsn: plan.earliest.lsn !== undefined ? formatLsn(plan.earliest.lsn) : null },
      latest: { time: w.latestTime?.toISOString() ?? null, lsn: w.latestLsn !== undefined ? formatLsn(w.latestLsn) : null, segment: w.lastSegment ?? null },
    },
    newArchive: plan.newArchive ?? null,
    postgres: { version: plan.binaries.version, binDir: plan.binaries.binDir },
    estimateSeconds: Math.round(plan.estimateSeconds * 10) / 10,
  };
}
