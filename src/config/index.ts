/**
 * Public entry of the config layer: load and validate CNPG manifests (-f FILE|DIR, repeatable),
 * resolve their secrets, and hand other modules typed manifests and ready-to-connect object stores.
 */
import type {
  BarmanObjectStoreConfiguration,
  Cluster,
  ManifestSet,
  ResolvedObjectStore,
  SecretKeySelector,
} from './types.js';
import { ConfigError, UserError, type ManifestIssue } from '../util/errors.js';
import { expandManifestPaths, parseManifestFiles } from './source.js';
import { validateDocument } from './validate.js';
import { ChainedSecretResolver, type ResolvedSecret } from './secrets.js';
import { destinationKind } from './rules.js';
import { clusterEncryption } from './encryption.js';

export { ENCRYPTION_ANNOTATION, ageKeysFromFiles, encryptionKeys } from './encryption.js';

export type { ResolvedSecret } from './secrets.js';

export interface SecretResolver {
  /** The secret's value as text. Throws UserError naming the secret and key (never the value). */
  get(selector: SecretKeySelector, namespace?: string): Promise<string>;
  /** Value plus a printable description of where it was found. */
  resolve?(selector: SecretKeySelector, namespace?: string): Promise<ResolvedSecret>;
}

export interface ConfigContext {
  manifests: ManifestSet;
  secrets: SecretResolver;
}

export interface LoadOptions {
  files: string[];
  secretsDir?: string;
  /** Environment consulted for the Kubernetes API (KUBERNETES_SERVICE_HOST, KUBECONFIG, HOME); default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Reads, parses and validates every manifest; throws ConfigError listing all problems of all files. */
export async function loadManifests(files: string[]): Promise<ManifestSet> {
  if (files.length === 0) {
    throw new UserError('no manifest given', 'pass -f FILE (or a directory of *.yaml), or set PGARK_CONFIG');
  }
  const expanded = expandManifestPaths(files);
  const parsed = parseManifestFiles(expanded.files);
  const issues: ManifestIssue[] = [...expanded.issues, ...parsed.issues];
  const set: ManifestSet = { clusters: [], backups: [], scheduledBackups: [], secrets: [], objectStores: [], notes: [] };
  for (const doc of parsed.documents) {
    const r = await validateDocument(doc);
    issues.push(...r.issues);
    if (r.note) set.notes!.push(r.note);
    const m = r.manifest;
    if (!m) continue;
    if (m.kind === 'Cluster') set.clusters.push(m);
    else if (m.kind === 'Backup') set.backups.push(m);
    else if (m.kind === 'ScheduledBackup') set.scheduledBackups.push(m);
    else if (m.kind === 'ObjectStore') set.objectStores.push(m);
    else set.secrets.push(m);
  }
  issues.push(...duplicateNames(set));
  if (issues.length > 0) throw new ConfigError(sortIssues(issues));
  return set;
}

export async function loadContext(opts: LoadOptions): Promise<ConfigContext> {
  const manifests = await loadManifests(opts.files);
  const secrets = new ChainedSecretResolver({ manifests: manifests.secrets, secretsDir: opts.secretsDir, env: opts.env ?? process.env });
  return { manifests, secrets };
}

function duplicateNames(set: ManifestSet): ManifestIssue[] {
  const out: ManifestIssue[] = [];
  const seen = new Map<string, string>();
  for (const m of [...set.clusters, ...set.backups, ...set.scheduledBackups, ...set.secrets, ...set.objectStores]) {
    const id = `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
    const first = seen.get(id);
    if (first) {
      out.push({ position: m.origin.positionOf('metadata.name'), path: 'metadata.name', message: `duplicate ${m.kind} "${m.metadata.name}" (also defined at ${first})` });
    } else {
      const p = m.origin.position;
      seen.set(id, `${p.file}:${p.line}`);
    }
  }
  return out;
}

function sortIssues(issues: ManifestIssue[]): ManifestIssue[] {
  return [...issues].sort(
    (a, b) =>
      (a.position?.file ?? '').localeCompare(b.position?.file ?? '') ||
      (a.position?.line ?? 0) - (b.position?.line ?? 0) ||
      (a.position?.column ?? 0) - (b.position?.column ?? 0),
  );
}

/** The Cluster named `name`, or the only Cluster when no name is given. */
export function findCluster(set: ManifestSet, name?: string): Cluster {
  const found = name ? set.clusters.filter((c) => c.metadata.name === name) : set.clusters;
  if (found.length === 1) return found[0];
  const names = set.clusters.map((c) => c.metadata.name);
  if (name) throw new UserError(`no Cluster named "${name}" in the manifests`, names.length ? `Clusters found: ${names.join(', ')}` : 'pass the Cluster manifest with -f');
  throw new UserError(
    `expected exactly one Cluster in the manifests, found ${found.length}`,
    found.length ? `choose one with --cluster (${names.join(', ')})` : 'pass the Cluster manifest with -f',
  );
}

/**
 * Resolves the secrets of a barmanObjectStore; serverName defaults to `defaultServerName`.
 * `namespace` (the manifest's) scopes Kubernetes API lookups.
 */
export async function resolveObjectStore(
  ctx: ConfigContext,
  store: BarmanObjectStoreConfiguration,
  defaultServerName: string,
  namespace?: string,
): Promise<ResolvedObjectStore> {
  const sources = new Map<string, string[]>();
  const get = async (field: string, sel?: SecretKeySelector): Promise<string | undefined> => {
    if (!sel) return undefined;
    const r = ctx.secrets.resolve
      ? await ctx.secrets.resolve(sel, namespace)
      : { value: await ctx.secrets.get(sel, namespace), source: `secret ${sel.name}` };
    sources.set(r.source, [...(sources.get(r.source) ?? []), field]);
    return r.value;
  };
  const resolved: ResolvedObjectStore = {
    destinationPath: store.destinationPath,
    endpointURL: store.endpointURL,
    endpointCA: await get('endpointCA', store.endpointCA),
    serverName: store.serverName ?? defaultServerName,
    credentialSource: '',
    config: store,
  };
  // Every SecretKeySelector of a credentials block becomes its secret's value; flags pass through.
  const resolveFields = async <T extends object>(creds: T): Promise<ResolvedFields<T>> => {
    const out: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(creds)) out[field] = isSelector(value) ? await get(field, value) : value;
    return out as ResolvedFields<T>;
  };
  let provider = 'none';
  const ambient: string[] = [];
  if (store.s3Credentials) {
    const c = store.s3Credentials;
    provider = 's3Credentials';
    resolved.s3 = await resolveFields(c);
    if (c.inheritFromIAMRole) ambient.push('inheritFromIAMRole (AWS default credential chain: IRSA, instance profile, environment)');
  }
  if (store.azureCredentials) {
    const c = store.azureCredentials;
    provider = 'azureCredentials';
    resolved.azure = await resolveFields(c);
    if (c.inheritFromAzureAD) ambient.push('inheritFromAzureAD (managed identity)');
    if (c.useDefaultAzureCredentials) ambient.push('useDefaultAzureCredentials (Azure default credential chain)');
  }
  if (store.googleCredentials) {
    const c = store.googleCredentials;
    provider = 'googleCredentials';
    resolved.google = await resolveFields(c);
    if (c.gkeEnvironment) ambient.push('gkeEnvironment (GKE workload identity)');
  }
  const parts = [...sources].map(([source, fields]) => `${fields.join(', ')} from ${source}`);
  resolved.credentialSource =
    destinationKind(store.destinationPath) === 'file' && provider === 'none'
      ? 'none: local file:// store'
      : `${provider}: ${[...ambient, ...parts].join('; ') || 'none'}`;
  return resolved;
}

/** The Cluster's own spec.backup.barmanObjectStore, resolved (serverName defaults to the cluster name). */
export async function clusterObjectStore(ctx: ConfigContext, cluster: Cluster): Promise<ResolvedObjectStore> {
  const store = cluster.spec.backup?.barmanObjectStore;
  if (!store) {
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no spec.backup.barmanObjectStore`,
      'add a spec.backup.barmanObjectStore section with destinationPath and credentials',
    );
  }
  return withClusterEncryption(ctx, cluster, await resolveObjectStore(ctx, store, cluster.metadata.name, cluster.metadata.namespace));
}

/** The store with the keys of `cluster`'s encryption annotation: a recovering Cluster's keys read its source store. */
export async function withClusterEncryption(ctx: ConfigContext, cluster: Cluster, store: ResolvedObjectStore): Promise<ResolvedObjectStore> {
  const age = await clusterEncryption(ctx, cluster);
  return age ? { ...store, age } : store;
}

/** The barmanObjectStore of spec.externalClusters[name] (serverName defaults to that name), resolved. */
export async function externalClusterObjectStore(ctx: ConfigContext, cluster: Cluster, name: string): Promise<ResolvedObjectStore> {
  const ext = cluster.spec.externalClusters?.find((e) => e.name === name);
  if (!ext?.barmanObjectStore) {
    throw new UserError(`Cluster "${cluster.metadata.name}" has no externalClusters entry "${name}" with a barmanObjectStore`);
  }
  return withClusterEncryption(ctx, cluster, await resolveObjectStore(ctx, ext.barmanObjectStore, ext.name, cluster.metadata.namespace));
}

/** A credentials block with each SecretKeySelector replaced by the secret's text. */
type ResolvedFields<T> = { [K in keyof T]: T[K] extends SecretKeySelector | undefined ? string | undefined : T[K] };

function isSelector(value: unknown): value is SecretKeySelector {
  return typeof value === 'object' && value !== null && 'name' in value && 'key' in value;
}

/**
 * PostgreSQL major version from spec.imageName's tag (ghcr.io/cloudnative-pg/postgresql:15.4-bookworm -> 15):
 * the only part of imageName pgark uses, to pick binaries. Undefined without a numeric tag.
 */
export function imageMajorVersion(imageName: string | undefined): number | undefined {
  const tag = imageName?.match(/:(\d+)(?:[.\-][^/:]*)?$/);
  return tag ? Number(tag[1]) : undefined;
}
