/**
 * Turns a Cluster manifest and command-line overrides into a BackupRequest: the Cluster's
 * spec.backup.barmanObjectStore.data section (compression, jobs, immediateCheckpoint) gives the
 * defaults, as it does for barman-cloud-backup under CNPG; the target and standby come from the
 * Backup, the flags or the Cluster (standby.ts).
 */
import type { ConfigContext, StoreSpec } from '../config/index.js';
import { clusterObjectStore, resolveStoreSpec } from '../config/index.js';
import type { Cluster } from '../config/types.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import { CODECS, type CodecName } from '../codec/types.js';
import { UserError } from '../util/errors.js';
import type { BackupMethod } from './pg-target.js';
import { standbyFromCluster, type BackupTarget } from './standby.js';
import { setting } from '../util/options.js';
import type { BackupRequest } from './run.js';
import { checkBackupName } from './commit.js';
import type { BackupType } from './incremental.js';

/** Codecs for base backups: barman-cloud 3.4 restores none/gzip/bzip2/snappy; lz4 and zstd are pgark-only. */
export const BACKUP_CODECS: readonly CodecName[] = ['none', 'gzip', 'bzip2', 'snappy', 'lz4', 'zstd'];
export const BARMAN_RESTORABLE_CODECS: readonly CodecName[] = ['none', 'gzip', 'bzip2', 'snappy'];

export interface BackupOverrides {
  name?: string;
  /** The store a Backup manifest names (method plugin); default the Cluster's own. */
  store?: StoreSpec;
  immediateCheckpoint?: boolean;
  compression?: string;
  jobs?: string | number;
  method?: string;
  walTimeout?: string | number;
  progress?: boolean;
  type?: string;
  /** A Backup's spec.target or --target. */
  target?: string;
  standbyHost?: string;
  standbyPort?: string | number;
}

function positiveInt(value: string | number, what: string, hint: string): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${what} must be a positive integer, got "${value}"`, hint);
  return n;
}

export function parseCodec(value: string, where: string): CodecName {
  const codec = value as CodecName;
  if (!BACKUP_CODECS.includes(codec) || !CODECS.includes(codec)) {
    throw new UserError(`${where}: unknown compression "${value}" (expected one of ${BACKUP_CODECS.join(', ')})`, 'none, gzip, bzip2 and snappy are restorable by barman-cloud too; lz4 and zstd only by pgark');
  }
  return codec;
}

/** Shared by --type and the ScheduledBackup annotation. */
export function parseBackupType(value: string, where: string): BackupType {
  if (value !== 'full' && value !== 'incremental') throw new UserError(`${where}: unknown backup type "${value}" (expected full or incremental)`, 'incremental stores only the blocks changed since the newest backup');
  return value;
}

export async function backupRequest(ctx: ConfigContext, cluster: Cluster, pg: PgConnectionOptions, o: BackupOverrides): Promise<BackupRequest> {
  const store = o.store ? await resolveStoreSpec(ctx, o.store) : await clusterObjectStore(ctx, cluster);
  const dataField = `${store.fields?.config ?? 'spec.backup.barmanObjectStore'}.data`;
  const data: Partial<NonNullable<typeof store.config.data>> = store.config.data ?? {};
  if (o.name !== undefined) checkBackupName(o.name);
  const method = (o.method ?? 'auto') as BackupMethod;
  if (!['auto', 'local', 'remote'].includes(method)) throw new UserError(`--method must be auto, local or remote, got "${o.method}"`);
  // CNPG's default for spec.backup.target; without a standby to read it means the primary.
  const target = (o.target ?? cluster.spec.backup?.target ?? 'prefer-standby') as BackupTarget;
  if (!['primary', 'prefer-standby'].includes(target)) throw new UserError(`--target must be primary or prefer-standby, got "${o.target}"`);
  const standbyHost = o.standbyHost ?? setting('standbyHost');
  const standbyPort = o.standbyPort ?? setting('standbyPort');
  const standby = standbyHost ? { pghost: standbyHost, pgport: standbyPort === undefined ? undefined : String(standbyPort) } : standbyFromCluster(cluster);
  return {
    store,
    pg,
    name: o.name,
    immediateCheckpoint: o.immediateCheckpoint ?? data.immediateCheckpoint ?? false,
    compression: o.compression !== undefined ? parseCodec(o.compression, '--compression') : data.compression ? parseCodec(data.compression, `${dataField}.compression`) : 'none',
    jobs: positiveInt(o.jobs ?? data.jobs ?? 2, o.jobs !== undefined ? '--jobs' : `${dataField}.jobs`, 'e.g. --jobs 2 (compression workers and parts uploaded at once)'),
    method,
    target,
    standby,
    walTimeoutSeconds: positiveInt(o.walTimeout ?? 300, '--wal-timeout', 'seconds to wait for the end WAL segment to be archived'),
    progress: o.progress,
    type: parseBackupType(o.type ?? 'full', '--type'),
  };
}
