/**
 * `pgark logical restore` (and bin/restore.sh): the non-interactive path validates every variable and
 * then probes the store and the database before anything is written; both paths end in performRestore.
 */
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { PgarkError, UserError } from '../util/errors.js';
import { formatBytes } from '../util/format.js';
import { META_SUFFIX } from './keys.js';
import { resolveLocation, type StorageLocation } from './location.js';
import { describeConn, type PgConn } from './pgconn.js';
import { ProgressBar } from './progress.js';
import { readRestoreEnv, readRestoreMode } from './restore-env.js';
import { createDatabase, executeRestore, inspectTarget, resolveBackup, type ResolvedBackup, type RestoreResult, type TargetState } from './restore.js';
import { IssueList } from './settings.js';

export function openLocation(location: StorageLocation): Promise<ObjectStore> {
  const source = location.provider === 's3' ? 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY' : location.provider === 'azure' ? 'AZURE_STORAGE_ACCOUNT_KEY' : 'none';
  return openObjectStore(resolveLocation(location, source));
}

/** What will happen to the target, for the warning and the summary. */
export function targetWarnings(conn: PgConn, state: TargetState): string[] {
  if (!state.exists) return [`${describeConn(conn)} does not exist and will be created`];
  if (state.objects > 0) {
    return [`${describeConn(conn)} is not empty (${state.objects} tables, sequences, views or large objects); the restore may fail on existing objects (it then rolls back) or mix old and restored data`];
  }
  return [];
}

export async function performRestore(store: ObjectStore, backup: ResolvedBackup, conn: PgConn, state: TargetState, jobs: number): Promise<RestoreResult> {
  if (!state.exists) await createDatabase(conn);
  if (!backup.meta) process.stderr.write(`warning: "${backup.key}" has no ${META_SUFFIX} sidecar; its checksum cannot be verified\n`);
  const progress = ProgressBar.forTerminal(backup.size, 'restoring');
  const result = await executeRestore(store, backup, conn, { jobs, progress });
  process.stdout.write(
    `restored "${result.key}" into ${describeConn(conn)}: ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s` +
      `${result.verified ? `, SHA-256 verified (${result.sha256})` : ', no checksum to verify'}\n`,
  );
  return result;
}

/** Every dynamic problem (store, backup path, database) at once, before anything is written. */
async function probe(store: ObjectStore, path: string, conn: PgConn): Promise<{ backup: ResolvedBackup; state: TargetState }> {
  const [backup, state] = await Promise.allSettled([resolveBackup(store, path, conn.database), inspectTarget(conn)]);
  const failures = [backup, state].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new UserError(`restore cannot start (${failures.length} problems):\n${failures.map((f) => `  ${f.message}${f instanceof PgarkError && f.hint ? `\n    hint: ${f.hint}` : ''}`).join('\n')}`);
  }
  return { backup: (backup as PromiseFulfilledResult<ResolvedBackup>).value, state: (state as PromiseFulfilledResult<TargetState>).value };
}

export async function nonInteractiveRestore(env: NodeJS.ProcessEnv): Promise<RestoreResult> {
  const { request, issues } = readRestoreEnv(env);
  issues.throwIfAny('restore settings are missing or invalid');
  const req = request!;
  const store = await openLocation(req.location);
  try {
    const { backup, state } = await probe(store, req.backupPath, req.target);
    for (const w of targetWarnings(req.target, state)) process.stderr.write(`warning: ${w}\n`);
    return await performRestore(store, backup, req.target, state, req.jobs);
  } finally {
    await store.close();
  }
}

export async function runRestore(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const issues = new IssueList();
  const mode = readRestoreMode(env, issues);
  issues.throwIfAny('restore settings are missing or invalid');
  if (mode === 'non-interactive') {
    await nonInteractiveRestore(env);
    return;
  }
  const { interactiveRestore } = await import('./restore-interactive.js');
  await interactiveRestore(env);
}
