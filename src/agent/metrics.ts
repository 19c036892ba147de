/**
 * The agent's Prometheus metrics. The cnpg_collector_* names, meanings and units are those of
 * CloudNativePG's instance collector, so dashboards and alerts built for CNPG backups work
 * unchanged (timestamps in Unix seconds; pg_wal_archive_status counts .ready/.done files by
 * label value). pgark_* metrics are pgark's own. Every metric carries a `cluster` label except
 * the WAL ones, which describe the one data directory the agent serves.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ArchiverStats } from './pg-stats.js';
import { archiveStatusCounts, type ArchiveStatusCounts } from '../wal/archive-status.js';

export { archiveStatusCounts, type ArchiveStatusCounts };

export class AgentMetrics {
  readonly registry = new Registry();

  readonly lastAvailableBackup = new Gauge({
    name: 'cnpg_collector_last_available_backup_timestamp',
    help: 'The last available backup as a unix timestamp',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly firstRecoverabilityPoint = new Gauge({
    name: 'cnpg_collector_first_recoverability_point',
    help: 'The first point of recoverability for the cluster as a unix timestamp',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly lastFailedBackup = new Gauge({
    name: 'cnpg_collector_last_failed_backup_timestamp',
    help: 'The last failed backup as a unix timestamp',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly backupDuration = new Histogram({
    name: 'pgark_backup_duration_seconds',
    help: 'Wall-clock duration of the backups the agent ran, by result',
    labelNames: ['cluster', 'result'],
    buckets: [10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200],
    registers: [this.registry],
  });
  readonly backupSize = new Histogram({
    name: 'pgark_backup_size_bytes',
    help: 'Bytes stored per completed backup (compressed tars)',
    labelNames: ['cluster'],
    buckets: [1 << 20, 16 << 20, 128 << 20, 1 << 30, 8 * 2 ** 30, 64 * 2 ** 30, 512 * 2 ** 30, 4 * 2 ** 40],
    registers: [this.registry],
  });
  readonly lastBackupSize = new Gauge({
    name: 'pgark_last_backup_size_bytes',
    help: 'Bytes stored by the last completed backup',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly backups = new Counter({
    name: 'pgark_backups_total',
    help: 'Backups the agent finished, by result (completed, failed)',
    labelNames: ['cluster', 'result'],
    registers: [this.registry],
  });
  readonly backupRunning = new Gauge({
    name: 'pgark_backup_running',
    help: '1 while a backup of the cluster is running',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly uploadedBytes = new Counter({
    name: 'pgark_uploaded_bytes_total',
    help: 'Bytes the agent stored in object stores, by kind (backup, wal)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly walArchived = new Counter({
    name: 'pgark_wal_archived_total',
    help: 'WAL files the agent archived for archive_command (stored now or found already stored)',
    registers: [this.registry],
  });
  readonly walArchiveFailed = new Counter({
    name: 'pgark_wal_archive_failed_total',
    help: 'archive_command requests the agent answered with a failure',
    registers: [this.registry],
  });
  readonly retentionRuns = new Counter({
    name: 'pgark_retention_runs_total',
    help: 'Retention policy runs, by result (ok, failed)',
    labelNames: ['cluster', 'result'],
    registers: [this.registry],
  });
  readonly retentionDeletedBackups = new Counter({
    name: 'pgark_retention_deleted_backups_total',
    help: 'Backups deleted by the retention policy',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly drillLastSuccess = new Gauge({
    name: 'pgark_drill_last_success_timestamp',
    help: 'When the last restore drill that passed finished (unix seconds)',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly drillLastStatus = new Gauge({
    name: 'pgark_drill_last_status',
    help: 'Result of the last restore drill: 1 passed, 0 failed',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly drillRto = new Gauge({
    name: 'pgark_drill_rto_seconds',
    help: 'Seconds each step of the last restore drill took (plan, download, replay, promotion, checks, total)',
    labelNames: ['cluster', 'step'],
    registers: [this.registry],
  });
  readonly recoverabilityWindow = new Gauge({
    name: 'pgark_recoverability_window_seconds',
    help: 'From the end of the oldest DONE backup to the newest archived WAL, as the last drill found it',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly walGapSegments = new Gauge({
    name: 'pgark_wal_gap_segments',
    help: 'WAL segments missing between archived ones, as the last drill listed the archive',
    labelNames: ['cluster'],
    registers: [this.registry],
  });
  readonly storeReachable = new Gauge({
    name: 'pgark_object_store_last_contact_timestamp',
    help: 'Last time the cluster\'s object store answered a catalog listing (unix seconds)',
    labelNames: ['cluster'],
    registers: [this.registry],
  });

  /**
   * `archiverStats` reads pg_stat_archiver (undefined: no PostgreSQL to ask). When PostgreSQL
   * cannot be asked, the cnpg_pg_stat_archiver_* samples keep their last values (a counter that
   * dropped to 0 would read as a reset) and pgark_pg_stat_archiver_up says 0.
   */
  constructor(pgdata: string | undefined, archiverStats?: () => Promise<ArchiverStats>) {
    collectDefaultMetrics({ register: this.registry });
    if (archiverStats) this.registerArchiverStats(archiverStats);
    if (!pgdata) return;
    // Read at scrape time: the files are the truth, and nothing is held between scrapes.
    let pending: Promise<ArchiveStatusCounts> | undefined;
    const counts = () => (pending ??= archiveStatusCounts(pgdata).finally(() => (pending = undefined)));
    new Gauge({
      name: 'cnpg_collector_pg_wal_archive_status',
      help: 'Number of WAL segments in the archive status directory (ready, done)',
      labelNames: ['value'],
      registers: [this.registry],
      async collect() {
        const c = await counts();
        this.set({ value: 'ready' }, c.ready);
        this.set({ value: 'done' }, c.done);
      },
    });
    new Gauge({
      name: 'pgark_wal_archive_lag_segments',
      help: 'WAL segments PostgreSQL has not archived yet (.ready files)',
      registers: [this.registry],
      async collect() {
        this.set((await counts()).ready);
      },
    });
    new Gauge({
      name: 'pgark_wal_archive_lag_seconds',
      help: 'Age of the oldest WAL segment waiting to be archived (0 when none)',
      registers: [this.registry],
      async collect() {
        this.set((await counts()).oldestReadySeconds);
      },
    });
  }

  private registerArchiverStats(read: () => Promise<ArchiverStats>): void {
    let pending: Promise<ArchiverStats | undefined> | undefined;
    const stats = () => (pending ??= read().catch(() => undefined).finally(() => (pending = undefined)));
    const fields: [keyof ArchiverStats, string, string][] = [
      ['archivedCount', 'archived_count', 'Number of WAL files that have been successfully archived'],
      ['failedCount', 'failed_count', 'Number of failed attempts for archiving WAL files'],
      ['secondsSinceLastArchival', 'seconds_since_last_archival', 'Seconds since the last successful archival operation (-1: none)'],
      ['secondsSinceLastFailure', 'seconds_since_last_failure', 'Seconds since the last failed archival operation (-1: none)'],
      ['lastArchivedTime', 'last_archived_time', 'Epoch of the last time WAL archiving succeeded (-1: none)'],
      ['lastFailedTime', 'last_failed_time', 'Epoch of the last time WAL archiving failed (-1: none)'],
    ];
    new Gauge({
      name: 'pgark_pg_stat_archiver_up',
      help: '1 when the last scrape could read pg_stat_archiver from PostgreSQL',
      registers: [this.registry],
      async collect() {
        this.set((await stats()) ? 1 : 0);
      },
    });
    for (const [field, suffix, help] of fields) {
      new Gauge({
        name: `cnpg_pg_stat_archiver_${suffix}`,
        help,
        registers: [this.registry],
        async collect() {
          const s = await stats();
          if (s) this.set(s[field]);
        },
      });
    }
  }
}
