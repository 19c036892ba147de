/**
 * The recoverability points of one server's backup catalog, the single computation behind the
 * agent's metrics and /status, the plugin's Metrics gauges and ObjectStore.status
 * serverRecoveryWindow: when the oldest and newest DONE backups ended, and when the newest
 * FAILED one did.
 */
import { isDeletionInProgress, type Catalog } from './catalog.js';

/** Times in ms since the epoch; undefined when the catalog has no such backup. */
export interface Recoverability {
  /** The end of the oldest DONE backup: nothing earlier can be recovered. */
  firstRecoverabilityPoint?: number;
  /** The end of the newest DONE backup. */
  lastSuccessfulBackup?: number;
  /** The newest FAILED backup's end, its start when it never ended. */
  lastFailedBackup?: number;
}

/**
 * A backup counts as recoverable as CNPG counts it (begin and end time both set) and only when
 * DONE, so a FAILED backup with times never does. A backup whose deletion retention left half
 * done carries FAILED with a deletion marker: it is not a failure of a backup.
 */
export function recoverability(catalog: Pick<Catalog, 'backups'>): Recoverability {
  const ends = catalog.backups.filter((b) => b.status === 'DONE' && b.begin_time && b.end_time).map((b) => b.end_time!.epochMs());
  const failures = catalog.backups
    .filter((b) => b.status === 'FAILED' && !isDeletionInProgress(b))
    .map((b) => (b.end_time ?? b.begin_time)?.epochMs())
    .filter((t): t is number => t !== undefined);
  return {
    firstRecoverabilityPoint: ends.length ? Math.min(...ends) : undefined,
    lastSuccessfulBackup: ends.length ? Math.max(...ends) : undefined,
    lastFailedBackup: failures.length ? Math.max(...failures) : undefined,
  };
}
