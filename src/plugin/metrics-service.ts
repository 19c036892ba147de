/**
 * The CNPG-I Metrics service (role instance): the gauges CNPG's instance manager exports for a
 * plugin, named `<plugin name with . and - as _>_<metric>`. The first three are the ones
 * plugin-barman-cloud defines (so dashboards built for it keep working under its name); the
 * others are pgark's: how far WAL archiving lags (pg_wal/archive_status, read at each Collect),
 * how old the newest archived segment is and how wide the recoverability window is (from the
 * cached catalog summary, ./catalog-summary.ts). Collect never lists the store itself.
 */
import type { ResolvedObjectStore } from '../config/types.js';
import { archiveStatusCounts } from '../wal/archive-status.js';
import { pluginTargetStore } from './backup-service.js';
import { unary } from './calls.js';
import { catalogSummariesOf, type CatalogSummaries } from './catalog-summary.js';
import type { PluginContext } from './context.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

interface GaugeSpec {
  name: string;
  help: string;
}

const GAUGES = {
  firstRecoverabilityPoint: { name: 'first_recoverability_point', help: 'The first point of recoverability for the cluster as a unix timestamp' },
  lastAvailableBackup: { name: 'last_available_backup_timestamp', help: 'The last available backup as a unix timestamp' },
  lastFailedBackup: { name: 'last_failed_backup_timestamp', help: 'The last failed backup as a unix timestamp' },
  walLagSegments: { name: 'wal_archive_lag_segments', help: 'WAL segments PostgreSQL has not archived yet (.ready files in pg_wal/archive_status)' },
  walLagSeconds: { name: 'wal_archive_lag_seconds', help: 'Age in seconds of the oldest WAL segment waiting to be archived (0 when none)' },
  lastArchivedAge: { name: 'last_archived_wal_age_seconds', help: 'Seconds since the newest WAL segment in the object store was stored (0 when the archive is empty)' },
  window: { name: 'recoverability_window_seconds', help: 'Seconds between the first recoverability point and the newest archived WAL (0 without a backup)' },
} satisfies Record<string, GaugeSpec>;

type GaugeKey = keyof typeof GAUGES;

/** The metric-name prefix CNPG's exporter expects from a plugin: its name with "." and "-" as "_". */
export function metricsPrefix(pluginName: string): string {
  return pluginName.replace(/[.-]/g, '_');
}

export interface MetricsDeps {
  pluginName: string;
  /** The data directory whose pg_wal/archive_status is read; undefined leaves the WAL lag gauges at 0. */
  pgdata: string | undefined;
  summaries: CatalogSummaries;
  /** The Cluster's own store, from the cluster_definition of the call. */
  targetStore(clusterDefinition: Buffer): Promise<ResolvedObjectStore>;
  now?: () => number;
}

export interface MetricDefinition {
  fqName: string;
  help: string;
  variableLabels: string[];
  constLabels: Record<string, string>;
  valueType: { type: 'TYPE_GAUGE' };
}

export interface CollectedMetric {
  fqName: string;
  value: number;
  variableLabels: string[];
}

export function defineMetrics(pluginName: string): MetricDefinition[] {
  const prefix = metricsPrefix(pluginName);
  return Object.values(GAUGES).map((g) => ({ fqName: `${prefix}_${g.name}`, help: g.help, variableLabels: [], constLabels: {}, valueType: { type: 'TYPE_GAUGE' } }));
}

export async function collectMetrics(deps: MetricsDeps, clusterDefinition: Buffer): Promise<CollectedMetric[]> {
  const nowMs = (deps.now ?? Date.now)();
  const store = await deps.targetStore(clusterDefinition);
  const [summary, lag] = await Promise.all([deps.summaries.get(store), deps.pgdata ? archiveStatusCounts(deps.pgdata, nowMs) : undefined]);
  const lastWalAt = summary.lastArchivedWal?.storedAt;
  const first = summary.firstRecoverabilityPoint;
  const values: Record<GaugeKey, number> = {
    // 0 when unknown, as plugin-barman-cloud reports a server without a recovery window.
    firstRecoverabilityPoint: first ?? 0,
    lastAvailableBackup: summary.lastAvailableBackup ?? 0,
    lastFailedBackup: summary.lastFailedBackup ?? 0,
    walLagSegments: lag?.ready ?? 0,
    walLagSeconds: lag?.oldestReadySeconds ?? 0,
    lastArchivedAge: lastWalAt === undefined ? 0 : Math.max(0, nowMs / 1000 - lastWalAt),
    window: first === undefined ? 0 : Math.max(0, Math.max(lastWalAt ?? 0, summary.lastAvailableBackup ?? 0) - first),
  };
  const prefix = metricsPrefix(deps.pluginName);
  return (Object.keys(GAUGES) as GaugeKey[]).map((k) => ({ fqName: `${prefix}_${GAUGES[k].name}`, value: values[k], variableLabels: [] }));
}

export function metricsService(ctx: PluginContext): PluginService {
  const deps: MetricsDeps = { pluginName: ctx.name, pgdata: ctx.pg.pgdata, summaries: catalogSummariesOf(ctx), targetStore: pluginTargetStore(ctx) };
  return {
    definition: serviceDefinition('metrics'),
    handlers: {
      GetCapabilities: unary('Metrics.GetCapabilities', async () => ({ capabilities: [{ rpc: { type: 'TYPE_METRICS' } }] })),
      Define: unary('Metrics.Define', async () => ({ metrics: defineMetrics(ctx.name) })),
      Collect: unary('Metrics.Collect', async (req: { clusterDefinition: Buffer }) => ({ metrics: await collectMetrics(deps, req.clusterDefinition) })),
    },
  };
}
