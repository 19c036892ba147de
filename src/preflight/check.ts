/**
 * `pgark check`: everything a user should know works before relying on pgark. Validates the
 * manifests, resolves the secrets, lists and writes a probe to every object store the Cluster
 * uses (in-tree barmanObjectStore sections or plugin references to ObjectStores), and inspects
 * PostgreSQL's archiving settings. Each step becomes one row of the report;
 * nothing here prints a secret value.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, ManifestSet, ResolvedObjectStore } from '../config/types.js';
import { clusterStoreSpec, externalStoreSpec, findCluster, imageMajorVersion, loadContext, resolveStoreSpec, type ConfigContext, type StoreSpec } from '../config/index.js';
import { SERVED_PLUGIN_NAMES } from '../config/plugin-form.js';
import { PgarkError } from '../util/errors.js';
import { catalogWriteOptions } from '../catalog/catalog.js';
import { checkPostgres } from './postgres.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import type { CheckReport, CheckRow } from './report.js';

export interface CheckOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  pg: PgConnectionOptions;
}

/** Throws ConfigError (exit 2) for invalid manifests; every later problem becomes a failed row. */
export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const rows: CheckRow[] = [];
  const m = ctx.manifests;
  const counts = (
    [
      [m.clusters.length, 'Cluster'],
      [m.backups.length, 'Backup'],
      [m.scheduledBackups.length, 'ScheduledBackup'],
      [m.secrets.length, 'Secret'],
      [m.objectStores.length, 'ObjectStore'],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, kind]) => `${n} ${kind}`);
  rows.push({ check: 'manifests', status: 'ok', detail: `valid: ${counts.join(', ') || 'no documents'}` });
  for (const note of m.notes ?? []) rows.push({ check: 'manifests', status: 'info', detail: note });

  const cluster = findCluster(m, opts.cluster);
  const ignored = [...cluster.ignoredFields, ...m.backups.flatMap((b) => b.ignoredFields), ...m.scheduledBackups.flatMap((s) => s.ignoredFields)];
  rows.push({
    check: 'ignored fields',
    status: 'info',
    detail: ignored.length ? `accepted, not acted on by pgark: ${ignored.join(', ')}` : 'none',
  });

  const stores = storesOf(m, cluster);
  if (stores.length === 0) {
    rows.push({
      check: 'object store',
      status: 'fail',
      detail: `Cluster "${cluster.metadata.name}" has no store: neither spec.backup.barmanObjectStore, nor a spec.plugins entry for ${SERVED_PLUGIN_NAMES.join(' or ')}, nor a recovery source with either`,
      hint: 'add spec.backup.barmanObjectStore (destinationPath + credentials), or spec.plugins: [{name: pgark.io, isWALArchiver: true, parameters: {barmanObjectName: STORE}}] and the ObjectStore STORE',
    });
  }
  for (const s of stores) rows.push(...(await checkStore(ctx, s)));
  const dataCompression = stores.find((s) => s.writable)?.spec.config.data?.compression;
  if (dataCompression === 'xz' || dataCompression === 'zstd') {
    rows.push({
      check: 'barman-cloud compatibility',
      status: 'warn',
      detail: `data.compression ${dataCompression} is a pgark extension: barman-cloud-restore and CNPG cannot restore these base backups`,
      hint: 'use gzip, bzip2 or snappy if CNPG or barman-cloud must read the backups',
    });
  }
  rows.push(...(await checkPostgres(opts.pg, imageMajorVersion(cluster.spec.imageName))));
  return { ok: !rows.some((r) => r.status === 'fail'), cluster: cluster.metadata.name, rows };
}

interface CheckedStore {
  label: string;
  /** The Cluster's own archive gets a write probe; a recovery source is only read. */
  writable: boolean;
  spec: StoreSpec;
}

/** The stores the Cluster uses, in either form; a plugin reference to an ObjectStore not in -f is a ConfigError (exit 2). */
function storesOf(m: ManifestSet, cluster: Cluster): CheckedStore[] {
  const out: CheckedStore[] = [];
  // The label names the ObjectStore in the plugin form: several Clusters may share it under their own serverName.
  const label = (what: string, spec: StoreSpec) => (spec.objectStore ? `${what} (ObjectStore ${spec.objectStore})` : what);
  const own = clusterStoreSpec(m, cluster);
  if (own) out.push({ label: label('backup store', own), writable: true, spec: own });
  const source = cluster.spec.bootstrap?.recovery?.source;
  const external = source ? externalStoreSpec(m, cluster, source) : undefined;
  if (external) out.push({ label: label(`recovery source ${source}`, external), writable: false, spec: external });
  return out;
}

async function checkStore(ctx: ConfigContext, ref: CheckedStore): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  let resolved: ResolvedObjectStore;
  try {
    resolved = await resolveStoreSpec(ctx, ref.spec);
  } catch (err) {
    return [failRow(`${ref.label}: credentials`, err)];
  }
  rows.push({ check: `${ref.label}: credentials`, status: 'ok', detail: resolved.credentialSource });
  const { openObjectStore } = await import('../storage/open.js');
  let store;
  try {
    store = await openObjectStore(resolved);
  } catch (err) {
    rows.push(failRow(`${ref.label}: connect`, err));
    return rows;
  }
  const where = `${store.displayUrl} (server ${resolved.serverName})`;
  try {
    const prefix = `${resolved.serverName}/`;
    let entries = 0;
    for await (const _entry of store.list(prefix, { delimiter: '/' })) entries++;
    rows.push({ check: `${ref.label}: list`, status: 'ok', detail: `${where}: ${entries} entr${entries === 1 ? 'y' : 'ies'} under ${prefix}` });
    if (ref.writable) {
      const probe = `${prefix}.pgark-check-${randomBytes(6).toString('hex')}`;
      // With the backups' tags and encryption: a bucket that requires them refuses a bare PUT.
      await store.put(probe, Buffer.from('pgark check probe\n'), catalogWriteOptions(resolved.config));
      await store.delete([probe]);
      if (await store.head(probe)) throw new PgarkError(`probe object ${probe} still exists after delete`);
      rows.push({ check: `${ref.label}: write+delete`, status: 'ok', detail: `probe object written and deleted under ${prefix}` });
    }
  } catch (err) {
    rows.push(await storageFailRow(`${ref.label}: access`, err));
  } finally {
    await store.close();
  }
  return rows;
}

async function storageFailRow(check: string, err: unknown): Promise<CheckRow> {
  const { classifyStorageError } = await import('../storage/errors.js');
  const kind = classifyStorageError(err);
  const label = { auth: 'wrong credentials', 'not-found-bucket': 'missing bucket/container', unreachable: 'endpoint unreachable', other: 'failed' }[kind];
  const row = failRow(check, err);
  return { ...row, detail: `${label}: ${row.detail}` };
}

function failRow(check: string, err: unknown): CheckRow {
  const e = err as Error & { hint?: string };
  return { check, status: 'fail', detail: e?.message ?? String(err), hint: e instanceof PgarkError ? e.hint : undefined };
}
