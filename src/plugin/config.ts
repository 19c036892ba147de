/**
 * From a CNPG-I request to an object store: the Cluster JSON CNPG sends (read leniently: only
 * the fields the plugin needs are checked, so fields of newer CNPG versions pass), this plugin's
 * spec.plugins entry and its parameters (barmanObjectName, serverName), the ObjectStore resource
 * they name, and its Secrets, ending in config's ResolvedObjectStore. ObjectStore documents come
 * from an ObjectStoreSource: the -f manifests here, the Kubernetes API elsewhere.
 */
import { z } from 'zod';
import { ENCRYPTION_ANNOTATION, encryptionKeys, resolveObjectStore, type ConfigContext } from '../config/index.js';
import type { ManifestSet, ObjectStore, ResolvedObjectStore } from '../config/types.js';
import { validateDocument } from '../config/validate.js';
import { SKIP_EMPTY_CHECK_ANNOTATION } from '../util/cnpg.js';
import { ConfigError, UserError } from '../util/errors.js';
import { InvalidRequestError } from './calls.js';

/** Where ObjectStore resources are read: a raw document (as the API returns it), or undefined when there is none. */
export interface ObjectStoreSource {
  read(name: string, namespace: string | undefined): Promise<unknown | undefined>;
}

const stringMap = z.record(z.string(), z.string());
const pluginEntry = z.looseObject({
  name: z.string().min(1),
  enabled: z.boolean().optional(),
  isWALArchiver: z.boolean().optional(),
  parameters: stringMap.optional(),
});
const clusterView = z.looseObject({
  metadata: z.looseObject({ name: z.string().min(1), namespace: z.string().optional(), annotations: stringMap.optional() }),
  spec: z
    .looseObject({
      plugins: z.array(pluginEntry).optional(),
      backup: z.looseObject({ barmanObjectStore: z.unknown().optional() }).optional(),
      bootstrap: z.looseObject({ recovery: z.looseObject({ source: z.string().optional() }).optional() }).optional(),
      replica: z.looseObject({ enabled: z.boolean().optional(), source: z.string().optional() }).optional(),
      externalClusters: z
        .array(z.looseObject({ name: z.string().min(1), plugin: z.looseObject({ name: z.string().min(1), parameters: stringMap.optional() }).optional() }))
        .optional(),
    })
    .default({}),
});

/** The parts of a Cluster the plugin acts on. */
export type PluginCluster = z.output<typeof clusterView>;
type PluginEntry = z.output<typeof pluginEntry>;

/** The Cluster of a request (its cluster_definition JSON) or of a -f manifest; InvalidRequestError names the bad field. */
export function readCluster(definition: Buffer | object): PluginCluster {
  let value: unknown = definition;
  if (Buffer.isBuffer(definition)) {
    if (definition.length === 0) throw new InvalidRequestError('cluster_definition is empty', 'CNPG sends the Cluster as JSON in every request');
    try {
      value = JSON.parse(definition.toString('utf8'));
    } catch (err) {
      throw new InvalidRequestError(`cluster_definition is not JSON: ${(err as Error).message}`);
    }
  }
  const r = clusterView.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  throw new InvalidRequestError(`cluster_definition is not a usable Cluster: ${problems.join('; ')}`);
}

/** Which ObjectStore and folder (serverName) a request works on. */
export interface StoreRef {
  namespace?: string;
  /** The ObjectStore's name (parameters.barmanObjectName). */
  objectName: string;
  serverName: string;
  /** Skip the empty-archive check (check_empty_wal_archive false, or CNPG's skip annotation). */
  skipEmptyCheck: boolean;
  /** The Secret with the age keys: parameter encryptionSecret, else the Cluster's pgark.io/encryption annotation. */
  encryptionSecret?: string;
}

/** `{encryptionSecret}` when the parameters or the Cluster's annotation name one, else nothing. */
function encryptionSecretOf(cluster: PluginCluster, parameters: Record<string, string>): Pick<StoreRef, 'encryptionSecret'> {
  const name = parameters.encryptionSecret || cluster.metadata.annotations?.[ENCRYPTION_ANNOTATION];
  return name ? { encryptionSecret: name } : {};
}

function enabledEntries(cluster: PluginCluster): PluginEntry[] {
  return (cluster.spec.plugins ?? []).filter((p) => p.enabled !== false);
}

function entryFor(cluster: PluginCluster, pluginName: string): PluginEntry | undefined {
  return enabledEntries(cluster).find((p) => p.name === pluginName);
}

function skipAnnotation(cluster: PluginCluster): boolean {
  return cluster.metadata.annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] === 'enabled';
}

function barmanObjectName(parameters: Record<string, string>, where: string): string {
  const name = parameters.barmanObjectName;
  if (!name) throw new UserError(`${where} has no parameters.barmanObjectName`, 'name the ObjectStore (barmancloud.cnpg.io/v1) to use: parameters: {barmanObjectName: NAME}');
  return name;
}

/**
 * The store this cluster archives to and backs up into: its spec.plugins entry for `pluginName`
 * (request parameters override the entry's), serverName defaulting to the Cluster's name.
 */
export function targetStoreRef(cluster: PluginCluster, pluginName: string, requestParameters: Record<string, string> = {}): StoreRef {
  const entry = entryFor(cluster, pluginName);
  const parameters = { ...entry?.parameters, ...requestParameters };
  if (!entry && !parameters.barmanObjectName) {
    const names = enabledEntries(cluster).map((p) => p.name);
    throw new UserError(
      `Cluster "${cluster.metadata.name}" has no enabled spec.plugins entry named "${pluginName}"`,
      names.length ? `its plugin entries: ${names.join(', ')}; serve with --name matching one of them` : `add spec.plugins: [{name: ${pluginName}, parameters: {barmanObjectName: ...}}]`,
    );
  }
  return {
    namespace: cluster.metadata.namespace,
    objectName: barmanObjectName(parameters, `the spec.plugins entry "${pluginName}" of Cluster "${cluster.metadata.name}"`),
    serverName: parameters.serverName || cluster.metadata.name,
    skipEmptyCheck: skipAnnotation(cluster),
    ...encryptionSecretOf(cluster, parameters),
  };
}

/** An external cluster's plugin store (recovery or replica source); serverName defaults to the external cluster's name. */
export function externalStoreRef(cluster: PluginCluster, pluginName: string, source: string): StoreRef {
  const ext = (cluster.spec.externalClusters ?? []).find((e) => e.name === source);
  const where = `spec.externalClusters[name=${source}] of Cluster "${cluster.metadata.name}"`;
  if (!ext) throw new UserError(`${where} does not exist`, 'the recovery or replica source must name an entry of spec.externalClusters');
  if (ext.plugin?.name !== pluginName) {
    throw new UserError(`${where} has no plugin section for "${pluginName}"`, `add plugin: {name: ${pluginName}, parameters: {barmanObjectName: ...}}`);
  }
  const parameters = ext.plugin.parameters ?? {};
  return {
    namespace: cluster.metadata.namespace,
    objectName: barmanObjectName(parameters, `the plugin section of ${where}`),
    serverName: parameters.serverName || ext.name,
    skipEmptyCheck: skipAnnotation(cluster),
    ...encryptionSecretOf(cluster, parameters),
  };
}

/** The recovery source of spec.bootstrap.recovery (the restore job's WAL and backups). */
export function recoveryStoreRef(cluster: PluginCluster, pluginName: string): StoreRef {
  const source = cluster.spec.bootstrap?.recovery?.source;
  if (!source) throw new UserError(`Cluster "${cluster.metadata.name}" has no spec.bootstrap.recovery.source`, 'a recovery through the plugin names an external cluster with a plugin section');
  return externalStoreRef(cluster, pluginName, source);
}

/**
 * Whether this plugin must store the WAL CNPG hands it. CNPG calls Archive on every enabled plugin
 * with the WAL capability, archiver or not (CNPG#11351), so the plugin decides: it archives when
 * its entry says isWALArchiver: true, or when it is the only enabled plugin entry and the Cluster
 * has no in-tree barmanObjectStore and no other entry claims the role.
 */
export function isWalArchiver(cluster: PluginCluster, pluginName: string): boolean {
  const entry = entryFor(cluster, pluginName);
  if (!entry) return false;
  if (entry.isWALArchiver === true) return true;
  const enabled = enabledEntries(cluster);
  return enabled.length === 1 && !enabled.some((p) => p.isWALArchiver) && cluster.spec.backup?.barmanObjectStore == null;
}

/** ObjectStores from the -f manifests; one without a namespace matches any. */
export function manifestObjectStoreSource(set: ManifestSet): ObjectStoreSource {
  return {
    async read(name, namespace) {
      return set.objectStores.find((o) => o.metadata.name === name && (!namespace || !o.metadata.namespace || o.metadata.namespace === namespace));
    },
  };
}

function isLoadedObjectStore(doc: unknown): doc is ObjectStore {
  return typeof doc === 'object' && doc !== null && 'origin' in doc && (doc as { kind?: unknown }).kind === 'ObjectStore';
}

/**
 * Resolves StoreRefs to ResolvedObjectStores. A document from the source is validated once per
 * (namespace, name, resourceVersion); -f documents were validated when loaded (with file:line:col).
 * Secrets are resolved on every call: WalTargetCache calls only every 30 s, and after the store
 * rejected a credential, so a rotated Secret is picked up without a restart.
 */
export class PluginConfig {
  private readonly parsed = new Map<string, { resourceVersion: string; store: ObjectStore }>();

  constructor(
    private readonly source: ObjectStoreSource,
    private readonly ctx: ConfigContext,
  ) {}

  async objectStore(name: string, namespace: string | undefined): Promise<ObjectStore> {
    const doc = await this.source.read(name, namespace);
    const where = `ObjectStore ${namespace ? `${namespace}/` : ''}${name}`;
    if (doc === undefined) {
      throw new UserError(`${where} not found`, 'create the ObjectStore (barmancloud.cnpg.io/v1) in the Cluster\'s namespace, or pass it with -f');
    }
    if (isLoadedObjectStore(doc)) return doc;
    const key = `${namespace ?? ''}/${name}`;
    const rv = (doc as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
    const cached = this.parsed.get(key);
    if (typeof rv === 'string' && cached?.resourceVersion === rv) return cached.store;
    const position = { file: where, line: 1, column: 1 };
    const r = await validateDocument({ file: where, value: doc, position, locate: () => position });
    if (r.issues.length > 0 || r.manifest?.kind !== 'ObjectStore') {
      // An API document has no file:line:column; the issue names the resource and the field instead.
      const issues = r.issues.length ? r.issues : [{ path: 'kind', message: 'not an ObjectStore', expected: 'kind: ObjectStore' }];
      throw new ConfigError(issues.map((i) => ({ ...i, position: undefined, path: `${where} ${i.path}` })));
    }
    if (typeof rv === 'string') this.parsed.set(key, { resourceVersion: rv, store: r.manifest });
    return r.manifest;
  }

  async resolve(ref: StoreRef): Promise<ResolvedObjectStore> {
    const store = await this.objectStore(ref.objectName, ref.namespace);
    const namespace = ref.namespace ?? store.metadata.namespace;
    const resolved = await resolveObjectStore(this.ctx, store.spec.configuration, ref.serverName, namespace);
    if (!ref.encryptionSecret) return resolved;
    return { ...resolved, age: await encryptionKeys(this.ctx, ref.encryptionSecret, namespace, `plugin parameter encryptionSecret of ObjectStore ${ref.objectName}`) };
  }
}
