/**
 * Public entry of the config layer: load and validate CNPG manifests (-f FILE|DIR, repeatable),
 * resolve their secrets, and hand other modules typed manifests and ready-to-connect object stores,
 * from either form of manifest: in-tree barmanObjectStore sections or plugin references to
 * ObjectStores (plugin-form.ts).
 */
import type {
  Backup,
  BarmanObjectStoreConfiguration,
  Cluster,
  ManifestSet,
  ObjectStore,
  ResolvedObjectStore,
  ScheduledBackup,
  SecretKeySelector,
  StoreFields,
} from './types.js';
import { ConfigError, UserError, type ManifestIssue } from '../util/errors.js';
import { externalStoreRef, PGARK_PLUGIN_NAME, SERVED_PLUGIN_NAMES, servedTargetEntry, targetStoreRef, type StoreRef } from './plugin-form.js';
import { expandManifestPaths, parseManifestFiles } from './source.js';
import { validateDocument } from './validate.js';
import { ChainedSecretResolver, type ResolvedSecret } from './secrets.js';
import { destinationKind } from './rules.js';
import { annotationEncryption, encryptionKeys, type EncryptionRef } from './encryption.js';

export { ENCRYPTION_ANNOTATION, annotationEncryption, ageKeysFromFiles, encryptionKeys, type EncryptionRef } from './encryption.js';

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
/** A set with no documents, for callers that read manifests from elsewhere (the Kubernetes API, a request). */
export function emptyManifestSet(): ManifestSet {
  return { clusters: [], backups: [], scheduledBackups: [], scheduledDrills: [], secrets: [], objectStores: [], notes: [] };
}

export async function loadManifests(files: string[]): Promise<ManifestSet> {
  if (files.length === 0) {
    throw new UserError('no manifest given', 'pass -f FILE (or a directory of *.yaml), or set PGARK_CONFIG');
  }
  const expanded = expandManifestPaths(files);
  const parsed = parseManifestFiles(expanded.files);
  const issues: ManifestIssue[] = [...expanded.issues, ...parsed.issues];
  const set = emptyManifestSet();
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
    else if (m.kind === 'ScheduledDrill') set.scheduledDrills.push(m);
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
  for (const m of [...set.clusters, ...set.backups, ...set.scheduledBackups, ...set.scheduledDrills, ...set.secrets, ...set.objectStores]) {
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

/** A store as the manifests describe it, before its Secrets are read. */
export interface StoreSpec {
  config: BarmanObjectStoreConfiguration;
  serverName: string;
  /** Scopes Kubernetes API lookups of its Secrets. */
  namespace?: string;
  retentionPolicy?: string;
  fields: StoreFields;
  /** The ObjectStore's name, in the plugin form. */
  objectStore?: string;
  /** The Secret with the store's age keys; without it objects are written in the clear. */
  encryption?: EncryptionRef;
}

export async function resolveStoreSpec(ctx: ConfigContext, spec: StoreSpec): Promise<ResolvedObjectStore> {
  const resolved = await resolveObjectStore(ctx, spec.config, spec.serverName, spec.namespace);
  const age = spec.encryption && (await encryptionKeys(ctx, spec.encryption.secret, spec.namespace, spec.encryption.where));
  return { ...resolved, retentionPolicy: spec.retentionPolicy, fields: spec.fields, ...(age && { age }) };
}

/** `cluster`'s in-tree store at `path`; its keys are those of the Cluster's encryption annotation. */
function inTreeSpec(cluster: Cluster, config: BarmanObjectStoreConfiguration, defaultServerName: string, path: string, retentionPolicy?: string): StoreSpec {
  const encryption = annotationEncryption(cluster);
  return {
    config,
    serverName: config.serverName ?? defaultServerName,
    namespace: cluster.metadata.namespace,
    retentionPolicy,
    ...(encryption && { encryption }),
    fields: { config: path, serverName: `${path}.serverName`, retentionPolicy: 'spec.backup.retentionPolicy' },
  };
}

/** The store a plugin-form reference means, once its ObjectStore is found (-f manifests or the Kubernetes API). */
export function objectStoreSpec(store: ObjectStore, ref: StoreRef): StoreSpec {
  const where = `ObjectStore ${store.metadata.name}`;
  return {
    config: store.spec.configuration,
    serverName: ref.serverName,
    namespace: ref.namespace ?? store.metadata.namespace,
    retentionPolicy: store.spec.retentionPolicy,
    objectStore: store.metadata.name,
    ...(ref.encryption && { encryption: ref.encryption }),
    fields: {
      config: `${where} spec.configuration`,
      serverName: ref.serverNameField ?? "parameters.serverName of the Cluster's spec.plugins entry",
      retentionPolicy: `${where} spec.retentionPolicy`,
    },
  };
}

/** The ObjectStore `name` of the manifests in the Cluster's namespace; one without a namespace matches any. */
export function findObjectStore(set: ManifestSet, name: string, namespace: string | undefined): ObjectStore | undefined {
  return set.objectStores.find((o) => o.metadata.name === name && (!namespace || !o.metadata.namespace || o.metadata.namespace === namespace));
}

/** A plugin-form reference of a -f Cluster: its ObjectStore must be among the manifests too. */
function manifestPluginSpec(set: ManifestSet, cluster: Cluster, ref: StoreRef): StoreSpec {
  const store = findObjectStore(set, ref.objectName, ref.namespace);
  if (store) return objectStoreSpec(store, ref);
  const path = ref.objectNameField ?? 'spec.plugins';
  const found = set.objectStores.map((o) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name));
  throw new ConfigError([
    {
      position: cluster.origin.positionOf(path) ?? cluster.origin.position,
      path,
      message: `no ObjectStore named "${ref.objectName}"${ref.namespace ? ` in namespace ${ref.namespace}` : ''} among the manifests`,
      expected: 'the name of an ObjectStore (barmancloud.cnpg.io/v1) passed with -f',
      hint: found.length ? `ObjectStores found: ${found.join(', ')}` : 'pass the ObjectStore manifest with -f as well (pgark migrate writes it next to the Cluster)',
    },
  ]);
}

/**
 * The Cluster's own archive and backup store: spec.backup.barmanObjectStore (in-tree form), else
 * the ObjectStore of its pgark.io / barman-cloud.cloudnative-pg.io spec.plugins entry (plugin
 * form), else undefined. `plugin` (a Backup's pluginConfiguration) picks the entry explicitly.
 */
export function clusterStoreSpec(set: ManifestSet, cluster: Cluster, plugin?: { name: string; parameters?: Record<string, string> }): StoreSpec | undefined {
  if (plugin) {
    if (!SERVED_PLUGIN_NAMES.includes(plugin.name)) {
      throw new UserError(`plugin "${plugin.name}" is not served by pgark`, `name one of ${SERVED_PLUGIN_NAMES.join(', ')} in pluginConfiguration.name`);
    }
    return manifestPluginSpec(set, cluster, targetStoreRef(cluster, plugin.name, plugin.parameters));
  }
  const own = cluster.spec.backup?.barmanObjectStore;
  if (own) return inTreeSpec(cluster, own, cluster.metadata.name, 'spec.backup.barmanObjectStore', cluster.spec.backup?.retentionPolicy);
  const entry = servedTargetEntry(cluster);
  return entry && manifestPluginSpec(set, cluster, targetStoreRef(cluster, entry.name));
}

/** The store spec.externalClusters[name] reads from: its barmanObjectStore, or its pgark / barman-cloud plugin section. */
export function externalStoreSpec(set: ManifestSet, cluster: Cluster, name: string): StoreSpec | undefined {
  const externals = cluster.spec.externalClusters ?? [];
  const i = externals.findIndex((e) => e.name === name);
  const ext = externals[i];
  if (ext?.barmanObjectStore) return inTreeSpec(cluster, ext.barmanObjectStore, ext.name, `spec.externalClusters[${i}].barmanObjectStore`);
  if (ext?.plugin && SERVED_PLUGIN_NAMES.includes(ext.plugin.name)) return manifestPluginSpec(set, cluster, externalStoreRef(cluster, ext.plugin.name, name));
  return undefined;
}

function noStoreError(cluster: Cluster, prefix = ''): UserError {
  return new UserError(
    `${prefix}Cluster "${cluster.metadata.name}" has no spec.backup.barmanObjectStore and no spec.plugins entry for ${SERVED_PLUGIN_NAMES.join(' or ')}`,
    'add spec.backup.barmanObjectStore (destinationPath and credentials), or spec.plugins: [{name: pgark.io, isWALArchiver: true, parameters: {barmanObjectName: STORE}}] with an ObjectStore STORE',
  );
}

/** The Cluster's own store (clusterStoreSpec), resolved; a Cluster without one is a UserError naming both forms. */
export async function clusterObjectStore(ctx: ConfigContext, cluster: Cluster, plugin?: { name: string; parameters?: Record<string, string> }): Promise<ResolvedObjectStore> {
  const spec = clusterStoreSpec(ctx.manifests, cluster, plugin);
  if (!spec) throw noStoreError(cluster);
  return resolveStoreSpec(ctx, spec);
}

/**
 * The store a Backup or ScheduledBackup writes to: method barmanObjectStore takes the Cluster's
 * own store in either form, method plugin the one its pluginConfiguration names.
 */
export function backupStoreSpec(set: ManifestSet, cluster: Cluster, backup: Backup | ScheduledBackup): StoreSpec {
  const where = `${backup.kind} "${backup.metadata.name}": `;
  const { method, pluginConfiguration } = backup.spec;
  if (method === 'volumeSnapshot') {
    throw new UserError(`${where}spec.method volumeSnapshot is not supported by pgark`, `use method: barmanObjectStore, or method: plugin with pluginConfiguration.name ${PGARK_PLUGIN_NAME}`);
  }
  const spec = clusterStoreSpec(set, cluster, method === 'plugin' ? pluginConfiguration : undefined);
  if (!spec) throw noStoreError(cluster, where);
  return spec;
}

/** The store of spec.externalClusters[name] (externalStoreSpec, serverName defaulting to that name), resolved. */
export async function externalClusterObjectStore(ctx: ConfigContext, cluster: Cluster, name: string): Promise<ResolvedObjectStore> {
  const spec = externalStoreSpec(ctx.manifests, cluster, name);
  if (!spec) {
    const names = (cluster.spec.externalClusters ?? []).map((e) => e.name);
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no externalClusters entry "${name}" with a barmanObjectStore or a ${SERVED_PLUGIN_NAMES.join(' / ')} plugin section`,
      names.length ? `known external clusters: ${names.join(', ')}` : 'add spec.externalClusters[] with a barmanObjectStore or plugin section',
    );
  }
  return resolveStoreSpec(ctx, spec);
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
