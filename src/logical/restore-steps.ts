/**
 * The steps both restore paths share (non-interactive in restore-run.ts, interactive in
 * restore-interactive.ts): a separate module so that neither path imports the other.
 */
import { ProgressDisplay } from '../io/progress.js';
import { assertDecodable, type AgeKeys } from '../codec/index.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { formatBytes } from '../util/format.js';
import { META_SUFFIX } from './keys.js';
import { resolveLocation, type StorageLocation } from './location.js';
import { describeConn, type PgConn } from './pgconn.js';
import { createDatabase, executeRestore, type ResolvedBackup, type RestoreResult, type TargetState } from './restore.js';

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

export async function performRestore(store: ObjectStore, backup: ResolvedBackup, conn: PgConn, state: TargetState, jobs: number, age?: AgeKeys): Promise<RestoreResult> {
  assertDecodable(backup, age, `backup "${backup.key}"`, 'set AGE_IDENTITY_FILE to an age identity file (as age-keygen writes it)');
  if (!state.exists) await createDatabase(conn);
  if (!backup.meta) process.stderr.write(`warning: "${backup.key}" has no ${META_SUFFIX} sidecar; its checksum cannot be verified\n`);
  // Off a terminal nothing is logged: the restore tool's own output is the record.
  const progress = new ProgressDisplay({ label: 'restoring', total: backup.size });
  const result = await executeRestore(store, backup, conn, { jobs, progress, age });
  process.stdout.write(
    `restored "${result.key}" into ${describeConn(conn)}: ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s` +
      `${result.verified ? `, SHA-256 verified (${result.sha256})` : ', no checksum to verify'}\n`,
  );
  return result;
}
