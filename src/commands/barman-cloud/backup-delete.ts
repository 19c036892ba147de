/**
 * barman-cloud-backup-delete: one backup (-b) or every backup a retention policy (-r) makes
 * obsolete, and the WAL only they needed, chosen as barman chooses (catalog/retention.ts) and
 * deleted the way pgark deletes (backup.info marked first, so an interruption never leaves a
 * DONE backup without its data). Like barman, nothing is deleted while any backup.info is
 * unreadable, and --dry-run prints what would go.
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import type { ObjectStore } from '../../storage/types.js';
import { catalogWriteOptions, KEEP_ANNOTATION, type Catalog } from '../../catalog/catalog.js';
import { backupInfoKey, BACKUP_ID_RE } from '../../catalog/layout.js';
import { applyRetention, parseBarmanRetentionPolicy, planBackupDeletion, type DeletionPlan, type WalObject } from '../../catalog/retention.js';
import { retentionPass } from '../../catalog/retention-run.js';
import { pyRepr } from '../../catalog/pyliteral.js';
import { archivedWalFiles } from '../../wal/list.js';
import { type ArgValues, BarmanExit, readCatalog, resolveBackup, runCommand, textArg, withStore } from './shared.js';
import { EXIT, type BarmanInvocation, type BarmanLog } from './common.js';
import { listIncrementals } from '../../catalog/incremental.js';

export interface BackupDeleteOptions {
  target: ResolvedObjectStore;
  /** Exactly one of backupId and retentionPolicy. */
  backupId?: string;
  retentionPolicy?: string;
  minimumRedundancy?: number;
  dryRun: boolean;
  /** Objects per delete request; at most the provider's own limit. */
  batchSize?: number;
}

/** The store with a smaller delete batch: every delete of catalog.ts goes through limits.deleteBatchSize. */
function withBatchSize(store: ObjectStore, size: number | undefined): ObjectStore {
  if (size === undefined || size >= store.limits.deleteBatchSize) return store;
  return Object.create(store, { limits: { value: { ...store.limits, deleteBatchSize: Math.max(1, size) } } }) as ObjectStore;
}

function refuseUnreadable(catalog: Catalog): void {
  if (catalog.unreadable.length === 0) return;
  throw new BarmanExit(
    `Cannot read the following backups: ${catalog.unreadable.map((u) => u.backupId).join(', ')}. Unsafe to proceed with deletion due to failure reading backup catalog`,
    EXIT.operation,
    'fix or remove the unreadable backup.info first',
  );
}

/** barman's --dry-run report: per backup, its objects (backup.info last), then the WAL it alone needed. */
function dryRunText(catalog: Catalog, plan: DeletionPlan): string {
  let text = '';
  for (const step of plan.steps) {
    const infoKey = backupInfoKey(catalog.serverName, step.backupId);
    const keys = (catalog.objects.get(step.backupId) ?? []).map((o) => o.key).filter((k) => k !== infoKey && !k.endsWith(`/${KEEP_ANNOTATION}`));
    text += `Skipping deletion of objects ${pyRepr([...keys, infoKey])} due to --dry-run option\n`;
    if (step.walKeys.length) text += `Skipping deletion of objects ${pyRepr([...step.walKeys].sort())} due to --dry-run option\n`;
  }
  return text;
}

async function walObjects(store: ObjectStore, serverName: string): Promise<WalObject[]> {
  const wals: WalObject[] = [];
  for await (const w of archivedWalFiles(store, serverName)) wals.push(w);
  return wals;
}

export async function backupDelete(opts: BackupDeleteOptions, log: BarmanLog, out: (text: string) => void): Promise<void> {
  const serverName = opts.target.serverName;
  const write = catalogWriteOptions(opts.target.config);
  await withStore(opts.target, async (opened) => {
    const store = withBatchSize(opened, opts.batchSize);
    if (opts.retentionPolicy !== undefined) {
      let policy;
      try {
        policy = parseBarmanRetentionPolicy(opts.retentionPolicy, opts.minimumRedundancy);
      } catch (err) {
        throw new BarmanExit(`Could not create retention policy ${opts.retentionPolicy}: ${(err as Error).message}`, EXIT.cli, (err as BarmanExit).hint);
      }
      const pass = await retentionPass(store, serverName, policy, archivedWalFiles(store, serverName), {
        apply: !opts.dryRun,
        write,
        onDeleted: (id) => log.info(`Deleted backup ${id} (${policy.barman})`),
      });
      // retentionPass deletes nothing when a backup.info is unreadable; barman then exits 1.
      refuseUnreadable(pass.catalog);
      if (opts.dryRun) out(dryRunText(pass.catalog, pass.plan));
      return;
    }
    const catalog = await readCatalog(store, serverName, log);
    refuseUnreadable(catalog);
    const ref = opts.backupId!;
    const id = BACKUP_ID_RE.test(ref) && catalog.incomplete.includes(ref) ? ref : BACKUP_ID_RE.test(ref) && !catalog.backups.some((b) => b.backup_id === ref) ? undefined : resolveBackup(catalog, ref).backup_id;
    if (id === undefined) {
      // barman warns and succeeds: a deletion that finds nothing to delete has nothing left to do.
      log.warning(`Backup ${ref} does not exist`);
      return;
    }
    const done = catalog.backups.filter((b) => b.status === 'DONE');
    if (opts.minimumRedundancy !== undefined && done.some((b) => b.backup_id === id) && done.length <= opts.minimumRedundancy) {
      throw new BarmanExit(`Skipping delete of backup ${id} for server ${serverName} due to minimum redundancy requirements (minimum redundancy = ${opts.minimumRedundancy}, current redundancy = ${done.length})`, EXIT.operation);
    }
    // A backup that a kept pgark incremental needs is refused: barman knows nothing of chains.
    const plan = planBackupDeletion(catalog, await walObjects(store, serverName), id, (await listIncrementals(store, serverName)).backups);
    if (plan.walSkippedBecause) log.warning(`WAL of backup ${id} left in place: ${plan.walSkippedBecause}`);
    if (opts.dryRun) {
      out(dryRunText(catalog, plan));
      return;
    }
    await applyRetention(store, serverName, plan, { write });
    log.info(`Deleted backup ${id}`);
  });
}

export function runBackupDelete(inv: BarmanInvocation): Promise<number> {
  const { values } = inv;
  const number = (v: ArgValues[string]) => (v === undefined ? undefined : Number(v));
  return runCommand(inv, 'source_url', (target, io) =>
    backupDelete(
      {
        target,
        backupId: textArg(values.backupId),
        retentionPolicy: textArg(values.retentionPolicy),
        minimumRedundancy: number(values.minimumRedundancy),
        dryRun: values.dryRun === true,
        batchSize: number(values.batchSize),
      },
      io.log,
      io.out,
    ),
  );
}
