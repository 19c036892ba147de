/**
 * The recovery window the plugin publishes in ObjectStore.status.serverRecoveryWindow[serverName],
 * with plugin-barman-cloud's field names and time format (metav1.Time: RFC 3339, seconds, UTC), so
 * tools that read its status read pgark's too.
 */
import { isDeletionInProgress, type Catalog } from '../catalog/catalog.js';

export interface RecoveryWindow {
  firstRecoverabilityPoint?: string;
  lastSuccessfulBackupTime?: string;
  lastFailedBackupTime?: string;
}

/** A time as metav1.Time serialises it: 2026-12-05T13:18:24Z. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * From the catalog: the end of the oldest DONE backup (CNPG's first recoverability point), the
 * end of the newest, and the newest FAILED backup's end (its start when it never ended). A backup
 * whose deletion was interrupted is not a failure of a backup.
 */
export function recoveryWindowOf(catalog: Catalog): RecoveryWindow {
  const done = catalog.backups.filter((b) => b.status === 'DONE' && b.end_time).map((b) => b.end_time!.epochMs());
  const failed = catalog.backups
    .filter((b) => b.status === 'FAILED' && !isDeletionInProgress(b))
    .map((b) => (b.end_time ?? b.begin_time)?.epochMs())
    .filter((t): t is number => t !== undefined);
  const time = (ms: number) => rfc3339(new Date(ms));
  return {
    firstRecoverabilityPoint: done.length ? time(Math.min(...done)) : undefined,
    lastSuccessfulBackupTime: done.length ? time(Math.max(...done)) : undefined,
    lastFailedBackupTime: failed.length ? time(Math.max(...failed)) : undefined,
  };
}

/**
 * `status` with serverName's entry set from `window`; other servers' entries are left as they are.
 * The first two fields follow the catalog (absent when it has no DONE backup); a failure time is
 * only ever moved forward, because a failure the backup service recorded may have left nothing
 * in the catalog.
 */
export function withRecoveryWindow(status: Record<string, unknown>, serverName: string, window: RecoveryWindow): Record<string, unknown> {
  const all = { ...((status.serverRecoveryWindow as Record<string, RecoveryWindow> | undefined) ?? {}) };
  const entry: RecoveryWindow = { ...all[serverName] };
  for (const field of ['firstRecoverabilityPoint', 'lastSuccessfulBackupTime'] as const) {
    if (window[field]) entry[field] = window[field];
    else delete entry[field];
  }
  const failed = [entry.lastFailedBackupTime, window.lastFailedBackupTime].filter((t): t is string => !!t);
  if (failed.length) entry.lastFailedBackupTime = failed.reduce((a, b) => (Date.parse(a) >= Date.parse(b) ? a : b));
  all[serverName] = entry;
  return { ...status, serverRecoveryWindow: all };
}
