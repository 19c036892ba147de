/**
 * `pgark logical restore` (and bin/restore.sh): the non-interactive path validates every variable and
 * then probes the store and the database before anything is written; both paths end in performRestore.
 */
import type { ObjectStore } from '../storage/types.js';
import { PgarkError, UserError } from '../util/errors.js';
import type { PgConn } from './pgconn.js';
import { readAgeIdentity, readRestoreEnv, readRestoreMode } from './restore-env.js';
import { inspectTarget, resolveBackup, type ResolvedBackup, type RestoreResult, type TargetState } from './restore.js';
import { openLocation, performRestore, targetWarnings } from './restore-steps.js';
import { IssueList } from './settings.js';

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
    return await performRestore(store, backup, req.target, state, req.jobs, await readAgeIdentity(env));
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
