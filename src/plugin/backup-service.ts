/**
 * The CNPG-I Backup service (role instance). CNPG's instance manager calls Backup synchronously
 * for a Backup CR with `spec.method: plugin`; this runs pgark's own base backup (takeBackup, the
 * path of `pgark backup`: parallel tars in barman-cloud's layout, backup ID claim, backup.info
 * last) into the store of the Cluster's plugin entry, reading the local PostgreSQL as the
 * sidecar sees it, and answers with every BackupResult field CNPG copies into Backup.status.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import type { ResolvedObjectStore } from '../config/types.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import type { CodecName } from '../codec/types.js';
import { parseCodec } from '../backup/request.js';
import { takeBackup, type BackupRequest } from '../backup/run.js';
import type { BackupRecord } from '../backup/record.js';
import { checkBackupName } from '../backup/commit.js';
import type { KubeObjectStores } from '../config/kube.js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';
import { InvalidRequestError, unary } from './calls.js';
import { catalogSummariesOf, type CatalogSummaries } from './catalog-summary.js';
import { targetStoreRef } from '../config/plugin-form.js';
import { readCluster } from './config.js';
import type { PluginContext } from './context.js';
import { withFailedBackup } from './recovery-window.js';
import type { MemoryPlan } from '../config/memory.js';
import { untracked } from '../util/gc.js';
import { pluginMetadata } from './identity.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

/** Where CNPG's instance manager puts PostgreSQL's socket, and the superuser the sidecar connects as. */
export const CNPG_SOCKET_DIR = '/controller/run';
export const CNPG_SUPERUSER = 'postgres';
/** PGDATA in CNPG's postgres container (the sidecar receives that container's environment). */
export const CNPG_PGDATA = '/var/lib/postgresql/data/pgdata';

/** The Backup parameters pgark reads (spec.pluginConfiguration.parameters); anything else is refused. */
const BACKUP_PARAMETERS = {
  compression: 'none, gzip, bzip2, snappy (barman-cloud restorable), lz4 or zstd; default: the ObjectStore data.compression',
  jobs: 'compression workers and parts uploaded at once; default: the ObjectStore data.jobs, else 2',
} as const;

export interface BackupCall {
  clusterDefinition: Buffer;
  backupDefinition: Buffer;
  parameters: Record<string, string>;
}

/** BackupResult of backup.proto, field for field (camelCase, as the loader presents it). */
export interface BackupResultMessage {
  backupId: string;
  backupName: string;
  startedAt: number;
  stoppedAt: number;
  beginWal: string;
  endWal: string;
  beginLsn: string;
  endLsn: string;
  backupLabelFile: Buffer;
  tablespaceMapFile: Buffer;
  instanceId: string;
  online: boolean;
  metadata: Record<string, string>;
}

export interface BackupDeps {
  /** The Cluster's own store (its spec.plugins entry for this plugin). */
  targetStore(clusterDefinition: Buffer): Promise<ResolvedObjectStore>;
  /** How to reach the local PostgreSQL; sidecarPgOptions() gives CNPG's defaults. */
  pg: PgConnectionOptions;
  version: string;
  /** Told about every backup that ended, so the metrics read the catalog again. */
  summaries?: CatalogSummaries;
  /** In a pod: records a backup that failed in its ObjectStore's status (lastFailedBackupTime). */
  recordFailure?: (clusterDefinition: Buffer, at: Date) => Promise<void>;
  /** The sidecar's budget: the upload's part size and parts in flight. */
  memory?: MemoryPlan;
}

/**
 * How the sidecar reaches PostgreSQL: `plugin serve --pghost/--pgport/--pguser/--pgdata`, else the
 * libpq variables of the postgres container's environment (CNPG passes it to the sidecar), else
 * CNPG's socket directory, user postgres and its PGDATA.
 */
export function sidecarPgOptions(env: NodeJS.ProcessEnv = process.env, flags: PgConnectionOptions = {}): PgConnectionOptions {
  return {
    pghost: flags.pghost || env.PGHOST || CNPG_SOCKET_DIR,
    pgport: flags.pgport || env.PGPORT || undefined,
    pguser: flags.pguser || env.PGUSER || CNPG_SUPERUSER,
    pgpassword: env.PGPASSWORD || undefined,
    pgdatabase: env.PGDATABASE || undefined,
    pgdata: flags.pgdata || env.PGDATA || CNPG_PGDATA,
  };
}

// Only the fields pgark acts on; CNPG sends the whole object (status, managedFields ...), which is ignored.
const backupCr = z.object({
  metadata: z.object({ name: z.string().min(1) }),
  spec: z.object({
    method: z.string().optional(),
    pluginConfiguration: z.object({ name: z.string().optional(), parameters: z.record(z.string(), z.string()).optional() }).optional(),
    online: z.boolean().optional(),
    onlineConfiguration: z.object({ immediateCheckpoint: z.boolean().optional(), waitForArchive: z.boolean().optional() }).optional(),
  }),
});
type BackupCr = z.output<typeof backupCr>;

function parseBackupDefinition(bytes: Buffer): BackupCr {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidRequestError(`backup_definition is not JSON: ${(err as Error).message}`, 'CNPG sends the Backup object serialized as JSON');
  }
  const parsed = backupCr.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new InvalidRequestError(`backup_definition: ${i.path.join('.') || '(root)'}: ${i.message}`, 'expected a postgresql.cnpg.io/v1 Backup with metadata.name and spec');
  }
  const cr = parsed.data;
  if (cr.spec.method !== undefined && cr.spec.method !== 'plugin') {
    throw new InvalidRequestError(`backup_definition: spec.method is "${cr.spec.method}" (expected "plugin")`, 'only Backups with method: plugin are sent to a CNPG-I plugin');
  }
  if (cr.spec.online === false) {
    throw new InvalidRequestError(
      'backup_definition: spec.online is false: pgark takes online backups only',
      'remove spec.online (or set it to true); an offline copy needs PostgreSQL stopped, which the sidecar cannot do',
    );
  }
  return cr;
}

/** Backup parameters: those of the call, over spec.pluginConfiguration.parameters of the Backup itself. */
function backupParameters(cr: BackupCr, given: Record<string, string>): Record<string, string> {
  const params = { ...(cr.spec.pluginConfiguration?.parameters ?? {}), ...given };
  const unknown = Object.keys(params).filter((k) => !(k in BACKUP_PARAMETERS));
  if (unknown.length) {
    throw new InvalidRequestError(
      `spec.pluginConfiguration.parameters: unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`,
      `a Backup accepts ${Object.entries(BACKUP_PARAMETERS).map(([k, v]) => `${k} (${v})`).join('; ')}`,
    );
  }
  return params;
}

function positiveInt(text: string, where: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidRequestError(`${where}: "${text}" is not a positive integer`, 'e.g. "4"');
  return Number(text);
}

/** A codec named by the Backup: a bad one is the request's fault, not the configuration's. */
function requestedCodec(text: string): CodecName {
  try {
    return parseCodec(text, 'parameters.compression');
  } catch (err) {
    throw new InvalidRequestError((err as UserError).message, (err as UserError).hint);
  }
}

export async function backupRequestFor(deps: BackupDeps, call: BackupCall): Promise<BackupRequest> {
  const cr = parseBackupDefinition(call.backupDefinition);
  const params = backupParameters(cr, call.parameters);
  const name = cr.metadata.name;
  try {
    checkBackupName(name);
  } catch (err) {
    throw new InvalidRequestError(`backup_definition: metadata.name: ${(err as UserError).message}`, (err as UserError).hint);
  }
  const store = await deps.targetStore(call.clusterDefinition);
  const data: Partial<NonNullable<typeof store.config.data>> = store.config.data ?? {};
  const jobs = params.jobs !== undefined ? positiveInt(params.jobs, 'parameters.jobs') : (data.jobs ?? 2);
  return {
    store,
    pg: deps.pg,
    name,
    immediateCheckpoint: cr.spec.onlineConfiguration?.immediateCheckpoint ?? data.immediateCheckpoint ?? false,
    compression: params.compression !== undefined ? requestedCodec(params.compression) : data.compression ? parseCodec(data.compression, 'ObjectStore spec.configuration.data.compression') : 'none',
    jobs,
    ...deps.memory?.backupUpload(jobs),
    method: 'auto',
    walTimeoutSeconds: 300,
    progress: false,
  };
}

/**
 * tablespace_map as pg_backup_stop() returns it: "<oid> <location>" per tablespace, with "\",
 * CR and LF in the location escaped by a backslash; empty without tablespaces.
 */
export function tablespaceMap(record: BackupRecord): string {
  return record.facts.tablespaces.map((t) => `${t.oid} ${t.location.replace(/[\\\r\n]/g, (c) => `\\${c}`)}\n`).join('');
}

function unixSeconds(d: Date | undefined): number {
  return d ? Math.floor(d.getTime() / 1000) : 0;
}

/** The pod (CNPG sets POD_NAME; HOSTNAME is the pod name too) and the PostgreSQL system identifier. */
function instanceId(record: BackupRecord, env: NodeJS.ProcessEnv): string {
  return `${env.POD_NAME || env.HOSTNAME || hostname()}/${record.facts.systemId}`;
}

export function backupResultOf(record: BackupRecord, extra: { method: string; displayUrl: string; serverName: string; version: string; env: NodeJS.ProcessEnv }): BackupResultMessage {
  return {
    backupId: record.backupId,
    backupName: record.backupName ?? '',
    startedAt: unixSeconds(record.beginTime),
    stoppedAt: unixSeconds(record.endTime),
    beginWal: record.beginWal,
    endWal: record.endWal ?? '',
    beginLsn: record.beginLsn,
    endLsn: record.endLsn ?? '',
    backupLabelFile: Buffer.from(record.backupLabel ?? '', 'utf8'),
    tablespaceMapFile: Buffer.from(tablespaceMap(record), 'utf8'),
    instanceId: instanceId(record, extra.env),
    online: true,
    metadata: {
      'pgark:version': extra.version,
      'pgark:backup-name': record.backupName ?? '',
      'pgark:compression': record.compression,
      'pgark:stored-bytes': String(record.storedBytes ?? 0),
      'pgark:method': extra.method,
      'pgark:timeline': String(record.timeline),
      'pgark:system-identifier': record.facts.systemId,
      'pgark:postgres-version': String(record.facts.version),
      'pgark:server-name': extra.serverName,
      'pgark:destination': extra.displayUrl,
    },
  };
}

export async function runPluginBackup(deps: BackupDeps, call: BackupCall): Promise<BackupResultMessage> {
  const req = await backupRequestFor(deps, call);
  try {
    const result = await (deps.memory?.trackTransfer ?? untracked)(takeBackup(req));
    return backupResultOf(result.record, { method: result.method, displayUrl: result.displayUrl, serverName: req.store.serverName, version: deps.version, env: process.env });
  } catch (err) {
    // A refused request never gets here; a backup that started and failed is what the status reports.
    await deps.recordFailure?.(call.clusterDefinition, new Date()).catch((e: unknown) => {
      logger().warn({ err: (e as Error).message }, 'could not record the failed backup in the ObjectStore status');
    });
    throw err;
  } finally {
    // Done or failed, the catalog changed (a FAILED backup.info is the last-failed timestamp).
    deps.summaries?.invalidate(req.store);
  }
}

/** The Cluster's own store: its spec.plugins entry for this plugin (barmanObjectName, serverName). */
export function pluginTargetStore(ctx: PluginContext): (clusterDefinition: Buffer) => Promise<ResolvedObjectStore> {
  return (clusterDefinition) => ctx.config.resolve(targetStoreRef(readCluster(clusterDefinition), ctx.name));
}

/** Writes a failure time into ObjectStore.status.serverRecoveryWindow[serverName] of the Cluster's own store. */
function failureRecorder(pluginName: string, objectStores: KubeObjectStores): NonNullable<BackupDeps['recordFailure']> {
  return async (clusterDefinition, at) => {
    const ref = targetStoreRef(readCluster(clusterDefinition), pluginName);
    const namespace = ref.namespace ?? setting('pluginNamespace');
    if (!namespace) throw new UserError(`the Cluster has no metadata.namespace and NAMESPACE is unset: ObjectStore ${ref.objectName} cannot be found`);
    await objectStores.updateStatus(ref.objectName, namespace, (status) => withFailedBackup(status, ref.serverName, at));
  };
}

export function backupService(ctx: PluginContext): PluginService {
  const deps: BackupDeps = {
    targetStore: pluginTargetStore(ctx),
    pg: ctx.pg,
    version: pluginMetadata(ctx.name).version,
    summaries: catalogSummariesOf(ctx),
    recordFailure: ctx.objectStores ? failureRecorder(ctx.name, ctx.objectStores) : undefined,
    memory: ctx.memory,
  };
  return {
    definition: serviceDefinition('backup'),
    handlers: {
      GetCapabilities: unary('Backup.GetCapabilities', async () => ({ capabilities: [{ rpc: { type: 'TYPE_BACKUP' } }] })),
      Backup: unary('Backup.Backup', (req: BackupCall) => runPluginBackup(deps, req)),
    },
  };
}
