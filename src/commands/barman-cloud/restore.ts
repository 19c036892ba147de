/**
 * barman-cloud-restore: one backup's tars downloaded in parallel and extracted into an empty
 * PGDATA (and each tablespace into its recorded or --tablespace location), with the checks
 * `pgark restore` makes (stored-object SHA-256 and backup_manifest, when the backup has them).
 * Like barman it writes no recovery configuration: CNPG writes its own.
 *
 * Exit codes decide CNPG's next move: on 2 or 4 it wipes PGDATA and retries the Job, on 1 or 3 it
 * gives up. So a missing backup, a non-empty destination, a damaged object or a failed
 * verification (nothing a retry can change) exit 1; an unreachable store 2; anything else 4. On
 * any failure pgark removes what it created, so a retry starts from what it found.
 */
import { resolve } from 'node:path';
import type { ResolvedObjectStore } from '../../config/types.js';
import { serverIdentity } from '../../pg/local-server.js';
import { assertEmptyOrAbsent, CreatedDirectories } from '../../recovery/directories.js';
import { backupObjects, toRecoveryBackup } from '../../recovery/catalog-view.js';
import { downloadBackup } from '../../recovery/download.js';
import { assertDecodable } from '../../codec/index.js';
import { StorageError } from '../../storage/errors.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { PgarkError } from '../../util/errors.js';
import { BarmanExit, readCatalog, resolveBackup, runCommand, withStore } from './shared.js';
import { EXIT, type BarmanInvocation, type BarmanLog } from './common.js';

export interface RestoreOptions {
  target: ResolvedObjectStore;
  backupId: string;
  destination: string;
  /** --tablespace NAME:LOCATION rules, as given. */
  tablespaces: string[];
  /** Tars downloaded at once. */
  jobs?: number;
}

const DEFAULT_JOBS = 4;

/** --tablespace rules by name; a rule without ":" is an argv error (3), as in barman. */
export function parseTablespaceRules(rules: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const rule of rules) {
    const colon = rule.indexOf(':');
    if (colon < 1) throw new BarmanExit(`Invalid tablespace relocation rule '${rule}'`, EXIT.cli, 'expected NAME:LOCATION');
    out.set(rule.slice(0, colon), rule.slice(colon + 1));
  }
  return out;
}

/**
 * Failures pgark raises on purpose (a missing tar, a damaged object, a failed verification, a
 * non-empty directory) are final: exit 1, so CNPG does not loop on them. Storage errors keep
 * their own code (2 unreachable, 4 otherwise), as do unexpected ones (4).
 */
function definitive(err: unknown): unknown {
  if (err instanceof PgarkError && !(err instanceof StorageError) && !(err instanceof BarmanExit)) {
    return new BarmanExit(err.message, EXIT.operation, err.hint);
  }
  return err;
}

export async function restore(opts: RestoreOptions, log: BarmanLog): Promise<void> {
  const rules = parseTablespaceRules(opts.tablespaces);
  const serverName = opts.target.serverName;
  const pgdata = resolve(opts.destination);
  await withStore(opts.target, async (store) => {
    const catalog = await readCatalog(store, serverName, log);
    const info = resolveBackup(catalog, opts.backupId, EXIT.operation);
    if (info.status !== 'DONE') {
      throw new BarmanExit(`Backup ${info.backup_id} has status ${info.status}; only DONE backups can be restored`, EXIT.operation);
    }
    for (const name of rules.keys()) {
      if (!info.tablespaces?.some((t) => t.name === name)) log.warning(`--tablespace ${name}: backup ${info.backup_id} has no such tablespace; rule ignored`);
    }
    const backup = toRecoveryBackup(info);
    backup.tablespaces = backup.tablespaces.map((t) => ({ ...t, location: rules.get(t.name) ?? t.location }));
    const dirs = new CreatedDirectories();
    try {
      assertEmptyOrAbsent(pgdata, 'Destination');
      for (const t of backup.tablespaces) assertEmptyOrAbsent(t.location, `Tablespace ${t.name} location`);
      dirs.track(pgdata);
      for (const t of backup.tablespaces) dirs.track(t.location);
      const objects = await backupObjects(store, serverName, backup);
      // barman-cloud has no keys to give: refuse before any byte is written.
      for (const o of objects) assertDecodable(o, undefined, o.key, AGE_DROP_IN_HINT);
      const jobs = opts.jobs ?? DEFAULT_JOBS;
      log.info(`Restoring backup ${info.backup_id} into ${pgdata}: ${objects.length} archive(s), ${jobs} at a time`);
      const result = await downloadBackup(store, backup, objects, { pgdata, jobs, progress: { step: (m) => log.info(m) }, who: serverIdentity() });
      log.info(
        `Restored ${result.files} files (${formatBytes(result.bytes)} downloaded) in ${formatDuration(result.seconds)}; ` +
          `objects ${result.objects.digests ? `verified by SHA-256 (${result.objects.objects})` : `not verified: ${result.objects.reason}`}; ` +
          `files ${result.verification.manifest ? `verified against backup_manifest (${result.verification.files})` : `not verified: ${result.verification.reason}`}`,
      );
    } catch (err) {
      dirs.removeAll();
      throw definitive(err);
    }
  });
}

const AGE_DROP_IN_HINT = "barman-cloud's commands take no age keys: restore with `pgark restore -f CLUSTER.yaml`, whose Cluster names the keys' Secret in the pgark.io/encryption annotation";

export function runRestore(inv: BarmanInvocation): Promise<number> {
  const { values } = inv;
  return runCommand(inv, 'source_url', async (target, io) => {
    // The --target-* options are refused by the spec table; "auto" is what they would steer.
    if (values.backup_id === 'auto') {
      throw new BarmanExit('backup_id auto (choosing the backup by a recovery target) is not supported by pgark', EXIT.cli, 'pass a backup id, name or shortcut (latest, oldest, ...)');
    }
    const tablespaces = Array.isArray(values.tablespace) ? values.tablespace : [];
    await restore({ target, backupId: String(values.backup_id), destination: String(values.recovery_dir), tablespaces }, io.log);
  });
}
