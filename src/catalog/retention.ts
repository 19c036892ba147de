/**
 * Retention: CNPG's `retentionPolicy` ("30d", "4w", "2m") is barman's
 * "RECOVERY WINDOW OF N DAYS|WEEKS|MONTHS", applied as barman-cloud-backup-delete 3.4 does
 * (../shared/reference/cnpg-barman-cloud.md section 3.10, barman/retention_policies.py and
 * barman/clients/cloud_backup_delete.py):
 *
 *  - point of recoverability (PoR) = now - window; a month is 31 days;
 *  - DONE backups newest first: each is kept, up to and including the first whose end_time < PoR
 *    (the base for recovering to the start of the window); older DONE backups are obsolete
 *    unless they carry a keep annotation; other statuses are never retention's to delete;
 *  - a minimum redundancy (pgark.io/retention-redundancy next to a window, barman-cloud-backup-delete
 *    -m) keeps older backups
 *    until that many are kept; alone it is barman's REDUNDANCY n (see backupReport);
 *  - obsolete backups are deleted oldest first, and after each one the WAL it alone needed:
 *    only when no older DONE/WAITING_FOR_WALS backup remains (keep:standalone ones only protect
 *    their own begin..end range), every WAL name < begin_wal of the next such backup (of the
 *    deleted one when none), by plain string comparison as barman does, except .history files
 *    and WAL on timelines of any remaining backup other than that next one's (the deleted
 *    backup's own timeline included, see walNamesFreedBy).
 *
 * pgark adds two things: a backup whose backup.info carries the deletion marker (an interrupted
 * delete, see catalog.ts) is finished with the same WAL rule; and a backup still running (a live
 * claim, no backup.info yet) counts as a next backup whose begin_wal is not known yet, so the WAL
 * of a deletion is kept when a running backup lies between it and the next DONE one (it would
 * have been removed up to that later backup's begin_wal, past the running one's start). Running
 * backups themselves are never retention's: it deletes backups with a backup.info only.
 *
 * Incremental backups (./incremental.ts) take part as backups of their own, and keepChains()
 * adds the chain rule: a backup stays while a kept incremental needs it, and an expired chain goes
 * as a whole, each incremental before the backup it needs (see deletionOrder).
 *
 * Planning is pure; applyRetention() executes a plan.
 */
import type { BackupInfo } from './backup-info.js';
import {
  isDeletionInProgress,
  runDeletionStep,
  runningBackupError,
  type Catalog,
  type CatalogWriteOptions,
  type KeepTarget,
  type UnreadableBackup,
} from './catalog.js';
import type { ObjectInfo, ObjectStore } from '../storage/types.js';
import { chainDeletionOrder, deletionTarget, dependentsOf, type IncrementalListing } from './incremental.js';
import { walNameParts } from '../pg/wal-names.js';
import type { PluginFormCluster } from '../config/plugin-form.js';
import { clusterRetentionRedundancy } from '../config/retention-redundancy.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const UNIT_DAYS = { d: 1, w: 7, m: 31 } as const;
const UNIT_WORD = { d: 'DAYS', w: 'WEEKS', m: 'MONTHS' } as const;

/** A recovery window ("30d"): barman's RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS. */
export interface WindowPolicy {
  kind: 'window';
  /** As written in the manifest, e.g. "30d". */
  text: string;
  value: number;
  unit: 'd' | 'w' | 'm';
  /** The window in days (months count 31 days). */
  days: number;
  /** barman's spelling, e.g. "RECOVERY WINDOW OF 30 DAYS". */
  barman: string;
  /** Backups kept even when older than the window (barman's minimum_redundancy; 0 = none). */
  minimumRedundancy: number;
}

/** A number of backups: barman's REDUNDANCY n. */
export interface RedundancyPolicy {
  kind: 'redundancy';
  text: string;
  value: number;
  barman: string;
  minimumRedundancy: number;
}

export type RetentionPolicy = WindowPolicy | RedundancyPolicy;

/** Parses CNPG's retentionPolicy (pattern ^[1-9][0-9]*[dwm]$). */
export function parseRetentionPolicy(text: string): WindowPolicy {
  const m = /^([1-9][0-9]*)([dwm])$/.exec(text.trim());
  if (!m) {
    throw new UserError(
      `invalid retentionPolicy "${text}" (expected a number of days, weeks or months: e.g. 30d, 4w, 2m)`,
      'CNPG accepts ^[1-9][0-9]*[dwm]$; a month counts 31 days',
    );
  }
  return windowPolicy(text.trim(), Number(m[1]), m[2] as WindowPolicy['unit']);
}

function windowPolicy(text: string, value: number, unit: WindowPolicy['unit'], minimumRedundancy = 0): WindowPolicy {
  return { kind: 'window', text, value, unit, days: value * UNIT_DAYS[unit], barman: `RECOVERY WINDOW OF ${value} ${UNIT_WORD[unit]}`, minimumRedundancy };
}

function redundancyPolicy(text: string, value: number, minimumRedundancy = 0): RedundancyPolicy {
  return { kind: 'redundancy', text, value, barman: `REDUNDANCY ${value}`, minimumRedundancy };
}

/**
 * The policy of a recovery window and/or a number of backups to keep, combined as barman
 * combines retention_policy and minimum_redundancy: with a window, the redundancy is the minimum
 * kept whatever their age (RECOVERY WINDOW with minimum redundancy); alone it is REDUNDANCY n.
 */
export function combineRetention(windowText: string | undefined, redundancy: number | undefined): RetentionPolicy | undefined {
  if (windowText) {
    const window = parseRetentionPolicy(windowText);
    return redundancy ? { ...window, text: `${window.text}, at least ${redundancy} backups`, minimumRedundancy: redundancy } : window;
  }
  if (!redundancy) return undefined;
  return redundancyPolicy(`${redundancy} backups`, redundancy);
}

/**
 * A Cluster's policy: `windowText` (its store's retentionPolicy, or --policy) with its redundancy
 * (the plugin entry's retentionRedundancy, else the pgark.io/retention-redundancy annotation).
 */
export function clusterRetention(cluster: PluginFormCluster, windowText: string | undefined, pluginName?: string): RetentionPolicy | undefined {
  return combineRetention(windowText, clusterRetentionRedundancy(cluster, pluginName));
}

const WINDOW_RE = /^\s*recovery\s+window\s+of\s+(\d+)\s+(day|month|week)s?\s*$/i;
const REDUNDANCY_RE = /^\s*redundancy\s+(\d+)\s*$/i;

/**
 * Parses barman's own spelling (barman-cloud-backup-delete -r): "RECOVERY WINDOW OF n
 * DAYS|WEEKS|MONTHS" or "REDUNDANCY n", case-insensitive, as barman's retention_policies.py
 * regular expressions accept them; `minimumRedundancy` is its -m (the same rule as
 * pgark.io/retention-redundancy next to a window, see backupReport).
 */
export function parseBarmanRetentionPolicy(text: string, minimumRedundancy = 0): RetentionPolicy {
  const w = WINDOW_RE.exec(text);
  if (w) return windowPolicy(text.trim(), Number(w[1]), w[2][0].toLowerCase() as WindowPolicy['unit'], minimumRedundancy);
  const r = REDUNDANCY_RE.exec(text);
  if (r) return redundancyPolicy(text.trim(), Number(r[1]), minimumRedundancy);
  throw new UserError(`invalid retention policy "${text}"`, 'expected REDUNDANCY n or RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS');
}

/** A WAL object: its key and its WAL file name without compression suffix. */
export interface WalObject {
  key: string;
  name: string;
  size: number;
}

export type BackupDecisionKind = 'keep' | 'delete' | 'finish-deletion' | 'ignore';

/**
 * The rule behind a decision: inside the window; the newest backup ending before the window's
 * start (the base needed to recover to that start); one of the n newest (REDUNDANCY n); kept
 * past the window for the minimum redundancy; a keep annotation; not DONE (never retention's);
 * obsolete; an interrupted deletion to finish; needed by a kept incremental backup (keepChains).
 */
export type RetentionRule =
  | 'window'
  | 'window-base'
  | 'redundancy'
  | 'minimum-redundancy'
  | 'keep-annotation'
  | 'not-done'
  | 'obsolete'
  | 'interrupted'
  | 'incremental-chain';

export interface BackupDecision {
  backupId: string;
  backupName: string | null;
  status: BackupInfo['status'];
  /** Set for an incremental: the backup it needs. */
  parentBackupId: string | null;
  endTime: Date | null;
  decision: BackupDecisionKind;
  rule: RetentionRule;
  reason: string;
  /** Bytes of the backup's objects (0 when unknown). */
  bytes: number;
  /** WAL objects removed right after this backup. */
  walDeleted: number;
}

export interface WalRange {
  timeline: string;
  first: string;
  last: string;
  files: number;
  bytes: number;
}

/** One backup to delete and the WAL keys to delete once its data is gone. */
export interface DeletionStep {
  backupId: string;
  /** Its backup.info; undefined when unreadable or absent (an interrupted upload). */
  info?: BackupInfo;
  walKeys: string[];
}

/** What applyRetention() executes: a retention plan, or one explicit deletion (planBackupDeletion). */
export interface DeletionPlan {
  serverName: string;
  /** In deletion order: oldest first, except that an incremental goes before the backup it needs. */
  steps: DeletionStep[];
  /** Set when the plan must not be applied (unreadable backup.info). */
  blockedBy: UnreadableBackup[];
}

export interface RetentionPlan extends DeletionPlan {
  policy: RetentionPolicy;
  now: Date;
  /** Start of the recovery window; null for a REDUNDANCY policy. */
  pointOfRecoverability: Date | null;
  /** Oldest first. */
  backups: BackupDecision[];
  walRanges: WalRange[];
  walFilesDeleted: number;
  bytesFreed: number;
  /** Earliest time recoverable from the catalog (end of the oldest DONE backup), before and after. */
  firstRecoverabilityBefore: Date | null;
  firstRecoverabilityAfter: Date | null;
}

export interface PlanInput {
  serverName: string;
  backups: BackupInfo[];
  /** Incremental backups (barman's catalog does not list them): planned with the others, chains kept whole. */
  incrementals?: BackupInfo[];
  /** Keep annotations by backup id. */
  keep?: Map<string, KeepTarget>;
  /** Objects of each backup directory, for bytes freed. */
  objects?: Map<string, ObjectInfo[]>;
  unreadable?: UnreadableBackup[];
  /** Ids of backups still running (catalog.running). */
  running?: string[];
  wals: WalObject[];
  policy: RetentionPolicy | string;
  now: Date;
  /**
   * The first WAL the cluster still needs (CNPG-I SetFirstRequired): no WAL at or after its
   * position is deleted, on any timeline, whatever the window says.
   */
  walFloor?: string;
}

const byId = (a: BackupInfo, b: BackupInfo) => (a.backup_id < b.backup_id ? -1 : a.backup_id > b.backup_id ? 1 : 0);

/** barman's DEFAULT_STATUS_FILTER for "previous" and "next" backups. */
const COPY_DONE = new Set<BackupInfo['status']>(['WAITING_FOR_WALS', 'DONE']);

/**
 * The WAL barman removes after deleting `deleted` from `remaining` (the catalog still holding
 * `deleted`), as cloud_backup_delete._remove_wals_for_backup with
 * skip_wal_cleanup_if_standalone (False for retention, True for an explicit deletion). Returns the
 * names to delete.
 */
function walNamesFreedBy(
  deleted: BackupInfo,
  remaining: BackupInfo[],
  keep: Map<string, KeepTarget>,
  walNames: Iterable<string>,
  skipIfStandalone: boolean,
  running: readonly string[],
): string[] {
  const ids = remaining.map((b) => b.backup_id);
  const at = ids.indexOf(deleted.backup_id);
  const protectedRanges: [string, string][] = [];
  for (let i = at - 1; i >= 0; i--) {
    const previous = remaining[i];
    if (!COPY_DONE.has(previous.status)) continue;
    // An older backup still needs all WAL from its begin to now, unless it is keep:standalone.
    if (keep.get(previous.backup_id) !== 'standalone' || skipIfStandalone) return [];
    protectedRanges.push([previous.begin_wal ?? '', previous.end_wal ?? '']);
  }
  const removeUntil = remaining.slice(at + 1).find((b) => COPY_DONE.has(b.status)) ?? deleted;
  if (running.some((id) => id > deleted.backup_id && id < removeUntil.backup_id)) return [];
  const untilWal = removeUntil.begin_wal;
  if (!untilWal) return [];
  // Timelines of the other backups are protected, and so is the deleted backup's own: barman
  // means to skip it (`value == deleted_backup`) but compares a freshly read BackupInfo with the
  // cached one by identity, so it never matches. We keep that (conservative) behaviour to agree.
  const protectedTimelines = new Set(remaining.filter((b) => b.timeline !== null).map((b) => b.timeline));
  protectedTimelines.delete(removeUntil.timeline);

  const out: string[] = [];
  for (const name of walNames) {
    const wal = walNameParts(name);
    if (!wal || wal.kind === 'history') continue;
    if (protectedTimelines.has(wal.timeline)) continue;
    const rangeName = wal.kind === 'backup' ? wal.segmentName! : name;
    if (protectedRanges.some(([begin, end]) => rangeName >= begin && rangeName <= end)) continue;
    if (name < untilWal) out.push(name);
  }
  return out;
}

function firstRecoverability(backups: BackupInfo[]): Date | null {
  const oldest = backups.filter((b) => b.status === 'DONE' && b.end_time).sort(byId)[0];
  return oldest?.end_time?.toDate() ?? null;
}

type Decision = Pick<BackupDecision, 'decision' | 'rule' | 'reason'>;

/**
 * Which backups the policy keeps, as barman 3.4's _backup_report (retention_policies.py), newest
 * first. A window keeps every DONE backup up to and including the first ending before the window's
 * start, then older ones while fewer than minimumRedundancy are kept; REDUNDANCY n keeps the n
 * newest (at least minimumRedundancy). Keep-annotated backups are never obsolete and count as kept
 * (where barman counts them). Not-DONE backups are not retention's.
 */
function backupReport(sorted: BackupInfo[], policy: RetentionPolicy, keep: Map<string, KeepTarget>, porMicros: bigint | null): Map<string, Decision> {
  const decisions = new Map<string, Decision>();
  const redundancy = Math.max(policy.kind === 'redundancy' ? policy.value : 0, policy.minimumRedundancy);
  let outside = false;
  let kept = 0;
  for (const b of [...sorted].reverse()) {
    const target = keep.get(b.backup_id);
    const annotated: Decision | undefined = target ? { decision: 'keep', rule: 'keep-annotation', reason: `keep:${target} annotation` } : undefined;
    let d: Decision;
    if (isDeletionInProgress(b)) {
      d = { decision: 'finish-deletion', rule: 'interrupted', reason: 'an earlier deletion was interrupted' };
    } else if (b.status !== 'DONE') {
      d = { decision: 'ignore', rule: 'not-done', reason: `status ${b.status}: retention deletes DONE backups only` };
    } else if (policy.kind === 'redundancy') {
      d = annotated ?? (kept < redundancy
        ? { decision: 'keep', rule: 'redundancy', reason: `one of the ${redundancy} newest backups (${policy.barman})` }
        : { decision: 'delete', rule: 'obsolete', reason: `obsolete: older than the ${redundancy} newest backups` });
      kept++;
    } else if (!outside) {
      const endsBefore = b.end_time !== null && b.end_time.epochMicros() < porMicros!;
      d = endsBefore
        ? { decision: 'keep', rule: 'window-base', reason: 'newest backup ending before the window start: base for recovery to it' }
        : { decision: 'keep', rule: 'window', reason: 'inside the recovery window' };
      if (target) d = { ...d, reason: `${d.reason} (and keep:${target})` };
      kept++;
      if (endsBefore) outside = true;
    } else if (kept < redundancy) {
      d = annotated ?? { decision: 'keep', rule: 'minimum-redundancy', reason: `older than the window, kept for the minimum redundancy of ${redundancy}` };
      kept++;
    } else {
      d = annotated ?? { decision: 'delete', rule: 'obsolete', reason: 'obsolete: older than the backup that covers the start of the window' };
    }
    decisions.set(b.backup_id, d);
  }
  return decisions;
}

/** Builds the retention plan for one server (pure; `now` is explicit). */
export function planRetention(input: PlanInput): RetentionPlan {
  const policy = typeof input.policy === 'string' ? parseRetentionPolicy(input.policy) : input.policy;
  const keep = input.keep ?? new Map<string, KeepTarget>();
  const por = policy.kind === 'window' ? new Date(input.now.getTime() - policy.days * DAY_MS) : null;
  const porMicros = por ? BigInt(por.getTime()) * 1000n : null;
  const sorted = [...input.backups, ...(input.incrementals ?? [])].sort(byId);
  const bytesOf = (id: string) => (input.objects?.get(id) ?? []).reduce((n, o) => n + o.size, 0);

  const decisions = backupReport(sorted, policy, keep, porMicros);

  keepChains(sorted, decisions);

  // Deletions oldest first, each removing the WAL it alone needed, on a shrinking catalog.
  let remaining = sorted;
  const walByName = new Map<string, WalObject[]>();
  for (const w of input.wals) {
    if (!walByName.has(w.name)) walByName.set(w.name, []);
    walByName.get(w.name)!.push(w);
  }
  const liveWal = new Set(walByName.keys());
  const deletedWal = new Set<string>();
  const steps: DeletionStep[] = [];
  const walCount = new Map<string, number>();
  for (const b of deletionOrder(sorted, decisions)) {
    const candidates = [...liveWal].filter((n) => !input.walFloor || !atOrAfter(n, input.walFloor)).sort();
    const names = walNamesFreedBy(b, remaining, keep, candidates, false, input.running ?? []);
    const walKeys = names.flatMap((n) => walByName.get(n)!.map((w) => w.key));
    for (const n of names) {
      liveWal.delete(n);
      deletedWal.add(n);
    }
    steps.push({ backupId: b.backup_id, info: b, walKeys });
    walCount.set(b.backup_id, walKeys.length);
    remaining = remaining.filter((r) => r !== b);
  }

  const backups: BackupDecision[] = sorted.map((b) => ({
    backupId: b.backup_id,
    backupName: b.backup_name,
    status: b.status,
    parentBackupId: b.parent_backup_id || null,
    endTime: b.end_time?.toDate() ?? null,
    ...decisions.get(b.backup_id)!,
    bytes: bytesOf(b.backup_id),
    walDeleted: walCount.get(b.backup_id) ?? 0,
  }));
  const walRanges = rangesOf([...walByName.keys()].sort(), deletedWal, walByName);
  const walBytes = walRanges.reduce((n, r) => n + r.bytes, 0);
  const backupBytes = backups.filter((b) => b.decision === 'delete' || b.decision === 'finish-deletion').reduce((n, b) => n + b.bytes, 0);
  return {
    serverName: input.serverName,
    policy,
    now: input.now,
    pointOfRecoverability: por,
    backups,
    steps,
    walRanges,
    walFilesDeleted: walRanges.reduce((n, r) => n + r.files, 0),
    bytesFreed: walBytes + backupBytes,
    firstRecoverabilityBefore: firstRecoverability(sorted),
    firstRecoverabilityAfter: firstRecoverability(remaining),
    blockedBy: input.unreadable ?? [],
  };
}

/**
 * The chain rule, over decisions the window made: every backup a kept (or ignored but restorable)
 * incremental needs, directly or through other incrementals, is kept, the reason naming the
 * oldest such incremental (the nearest, as the window keeps the newest ones). A backup already
 * being deleted is left so: its chain is broken already.
 */
export function keepChains(backups: readonly BackupInfo[], decisions: Map<string, Pick<BackupDecision, 'decision' | 'rule' | 'reason'>>): void {
  const byIdMap = new Map(backups.map((b) => [b.backup_id, b]));
  for (const b of [...backups].sort(byId)) {
    const d = decisions.get(b.backup_id)!;
    if (!b.parent_backup_id || !COPY_DONE.has(b.status) || (d.decision !== 'keep' && d.decision !== 'ignore')) continue;
    // A missing parent ends the walk (the chain is broken already); `seen` ends a damaged, looping one.
    const seen = new Set<string>();
    for (let parent = byIdMap.get(b.parent_backup_id); parent && !seen.has(parent.backup_id); parent = byIdMap.get(parent.parent_backup_id ?? '')) {
      seen.add(parent.backup_id);
      if (decisions.get(parent.backup_id)!.decision === 'delete') decisions.set(parent.backup_id, { decision: 'keep', rule: 'incremental-chain', reason: `needed by incremental ${b.backup_id}` });
    }
  }
}

/**
 * The backups to delete, oldest first, except that each one's incrementals to delete go right
 * before it, newest first: an interruption then never leaves an incremental without its parent.
 */
function deletionOrder(sorted: readonly BackupInfo[], decisions: Map<string, Pick<BackupDecision, 'decision'>>): BackupInfo[] {
  const doomed = sorted.filter((b) => ['delete', 'finish-deletion'].includes(decisions.get(b.backup_id)!.decision));
  const out: BackupInfo[] = [];
  const placed = new Set<string>();
  for (const b of doomed) {
    if (placed.has(b.backup_id)) continue;
    for (const x of [...dependentsOf(b.backup_id, doomed), b]) {
      if (placed.has(x.backup_id)) continue;
      placed.add(x.backup_id);
      out.push(x);
    }
  }
  return out;
}

/**
 * Whether WAL `name` lies at or after `floor`'s position (log and segment, ignoring the timeline,
 * which keeps more than a plain name comparison would). Names that are not WAL never are.
 */
function atOrAfter(name: string, floor: string): boolean {
  const wal = walNameParts(name);
  const limit = walNameParts(floor);
  if (!wal?.segmentName || !limit?.segmentName) return false;
  return wal.segmentName.slice(8).toUpperCase() >= limit.segmentName.slice(8).toUpperCase();
}

/** Runs of consecutive deleted names (in name order, per timeline), for display. */
function rangesOf(allNames: string[], deleted: Set<string>, walByName: Map<string, WalObject[]>): WalRange[] {
  const ranges: WalRange[] = [];
  let current: WalRange | undefined;
  for (const name of allNames) {
    if (!deleted.has(name)) {
      current = undefined;
      continue;
    }
    // walNamesFreedBy deletes only names it could read.
    const timeline = walNameParts(name)!.timelineHex;
    if (current && current.timeline !== timeline) current = undefined;
    const objects = walByName.get(name)!;
    const bytes = objects.reduce((n, w) => n + w.size, 0);
    if (!current) {
      current = { timeline, first: name, last: name, files: 0, bytes: 0 };
      ranges.push(current);
    }
    current.last = name;
    current.files += objects.length;
    current.bytes += bytes;
  }
  return ranges;
}

/**
 * Plans retention over a catalog read by listBackups() and the incrementals read by
 * listIncrementals(); beyond the policy, the CNPG-I first-required WAL limits it (see
 * PlanInput). A running incremental holds its claim under base/<id>/
 * (backup/claim.ts), so catalog.running already has it.
 */
export function planFromCatalog(
  catalog: Catalog,
  wals: WalObject[],
  policy: RetentionPolicy | string,
  now: Date,
  limits: Pick<PlanInput, 'walFloor'> = {},
  incrementals: IncrementalListing = { backups: [], unreadable: [], incomplete: [], objects: new Map() },
): RetentionPlan {
  return planRetention({
    ...limits,
    serverName: catalog.serverName,
    backups: catalog.backups,
    incrementals: incrementals.backups,
    keep: catalog.keep,
    objects: new Map([...catalog.objects, ...incrementals.objects]),
    unreadable: [...catalog.unreadable, ...incrementals.unreadable],
    running: catalog.running.map((r) => r.backupId),
    wals,
    policy,
    now,
  });
}

/**
 * An explicit deletion (`pgark backup delete`), as barman-cloud-backup-delete -b does: the backup,
 * then the WAL only it needed (none when an older backup is keep:standalone, since barman skips
 * WAL cleanup then). Refuses a backup with a keep annotation, and one that an incremental of
 * `incrementals` (listIncrementals) still needs. With an unreadable backup.info in the catalog the
 * WAL is left alone (it cannot be reasoned about), but the backup is deleted.
 */
export function planBackupDeletion(catalog: Catalog, wals: WalObject[], backupId: string, incrementals: readonly BackupInfo[]): DeletionPlan & { walSkippedBecause?: string } {
  chainDeletionOrder(backupId, incrementals, false);
  const keepTarget = catalog.keep.get(backupId);
  if (keepTarget) {
    throw new UserError(
      `backup "${backupId}" has a keep:${keepTarget} annotation and is not deleted`,
      'release it first (barman-cloud-backup-keep --release) if the backup is no longer needed',
    );
  }
  const sorted = [...catalog.backups].sort(byId);
  const info = sorted.find((b) => b.backup_id === backupId);
  const running = catalog.running.find((r) => r.backupId === backupId);
  if (running) throw runningBackupError(backupId, running.claim);
  const known = info || catalog.unreadable.some((u) => u.backupId === backupId) || catalog.incomplete.includes(backupId);
  if (!known) throw new NotFoundError(`backup "${backupId}" not found for server "${catalog.serverName}"`);
  let walSkippedBecause: string | undefined;
  if (!info) walSkippedBecause = 'the backup has no readable backup.info';
  else if (catalog.unreadable.length > 0) walSkippedBecause = `unreadable backup.info in ${catalog.unreadable.map((u) => u.backupId).join(', ')}`;
  const walNames = [...new Set(wals.map((w) => w.name))].sort();
  const names = info && !walSkippedBecause ? walNamesFreedBy(info, sorted, catalog.keep, walNames, true, catalog.running.map((r) => r.backupId)) : [];
  const wanted = new Set(names);
  return {
    serverName: catalog.serverName,
    steps: [{ backupId, info, walKeys: wals.filter((w) => wanted.has(w.name)).map((w) => w.key) }],
    blockedBy: [],
    walSkippedBecause,
  };
}

export interface ApplyProgress {
  backupId: string;
  phase: 'marked' | 'wal-deleted' | 'deleted';
}

export interface ApplyOptions {
  /** Tags and encryption for rewriting backup.info (catalogWriteOptions of the store's configuration). */
  write?: CatalogWriteOptions;
  onProgress?: (p: ApplyProgress) => void;
}

/** Refuses a plan made from a catalog with an unreadable backup.info (see applyRetention). */
export function assertNotBlocked(plan: DeletionPlan): void {
  if (plan.blockedBy.length > 0) {
    throw new PgarkError(
      `retention deleted nothing: cannot read backup.info of ${plan.blockedBy.map((u) => `${u.backupId} (${u.error})`).join(', ')}`,
      1,
      'fix or remove the unreadable backup(s) first; deleting with an incomplete view of the catalog could remove WAL a backup needs',
    );
  }
}

/**
 * Executes a plan. Per backup, oldest first, as catalog.ts's runDeletionStep: mark its
 * backup.info as a deletion in progress, delete its data files, then the WAL it alone needed, then
 * backup.info. Every delete is batched to the provider's limit. An interruption leaves marked
 * (FAILED) backups that the next run finishes; a store refusing the deletes leaves them as they
 * were. Deletes nothing when the catalog had an unreadable backup.info.
 */
export async function applyRetention(store: ObjectStore, serverName: string, plan: DeletionPlan, opts: ApplyOptions = {}): Promise<void> {
  assertNotBlocked(plan);
  for (const step of plan.steps) {
    const report = (phase: ApplyProgress['phase']) => opts.onProgress?.({ backupId: step.backupId, phase });
    await runDeletionStep(store, serverName, step.backupId, { info: step.info, walKeys: step.walKeys, write: opts.write, onPhase: report, ...deletionTarget(serverName, step.info) });
    report('deleted');
  }
}
