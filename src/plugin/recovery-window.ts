/**
 * The recovery window the plugin publishes in ObjectStore.status.serverRecoveryWindow[serverName],
 * with plugin-barman-cloud's field names and time format (metav1.Time: RFC 3339, seconds, UTC), so
 * tools that read its status read pgark's too.
 */
import type { Catalog } from '../catalog/catalog.js';
import { recoverability } from '../catalog/recoverability.js';

export interface RecoveryWindow {
  firstRecoverabilityPoint?: string;
  lastSuccessfulBackupTime?: string;
  lastFailedBackupTime?: string;
}

/** A time as metav1.Time serialises it: 2026-12-05T13:18:24Z. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The catalog's recoverability points as ObjectStore status fields. */
export function recoveryWindowOf(catalog: Pick<Catalog, 'backups'>): RecoveryWindow {
  const r = recoverability(catalog);
  const time = (ms: number | undefined) => (ms === undefined ? undefined : rfc3339(new Date(ms)));
  return { firstRecoverabilityPoint: time(r.firstRecoverabilityPoint), lastSuccessfulBackupTime: time(r.lastSuccessfulBackup), lastFailedBackupTime: time(r.lastFailedBackup) };
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
