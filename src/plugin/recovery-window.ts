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

/** `status` with serverName's entry changed by `change`; other servers' entries are left as they are. */
function withEntry(status: Record<string, unknown>, serverName: string, change: (entry: RecoveryWindow) => void): Record<string, unknown> {
  const all = { ...((status.serverRecoveryWindow as Record<string, RecoveryWindow> | undefined) ?? {}) };
  const entry: RecoveryWindow = { ...all[serverName] };
  change(entry);
  all[serverName] = entry;
  return { ...status, serverRecoveryWindow: all };
}

/**
 * A failure time is only ever moved forward: a failure the backup service recorded may have left
 * nothing in the catalog, and the catalog may hold an older one.
 */
function noteFailure(entry: RecoveryWindow, time: string | undefined): void {
  if (time && (!entry.lastFailedBackupTime || Date.parse(time) > Date.parse(entry.lastFailedBackupTime))) entry.lastFailedBackupTime = time;
}

/**
 * `status` with serverName's entry set from `window`. The first two fields follow the catalog
 * (absent when it has no DONE backup); the failure time moves forward only.
 */
export function withRecoveryWindow(status: Record<string, unknown>, serverName: string, window: RecoveryWindow): Record<string, unknown> {
  return withEntry(status, serverName, (entry) => {
    for (const field of ['firstRecoverabilityPoint', 'lastSuccessfulBackupTime'] as const) {
      if (window[field]) entry[field] = window[field];
      else delete entry[field];
    }
    noteFailure(entry, window.lastFailedBackupTime);
  });
}

/** `status` after a Backup call failed at `at`: only lastFailedBackupTime changes. */
export function withFailedBackup(status: Record<string, unknown>, serverName: string, at: Date): Record<string, unknown> {
  return withEntry(status, serverName, (entry) => noteFailure(entry, rfc3339(at)));
}
