/**
 * Which ObjectStores a Cluster (the JSON CNPG sends in every operator-side call) asks this plugin
 * to use: the archive/backup target of spec.plugins, the recovery source and the replica source
 * of spec.externalClusters. The Cluster arrives as CNPG serialised it, so it is read loosely:
 * pgark's strict manifest schema would reject fields newer CNPG versions add.
 */

type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}
export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** One use of this plugin by the Cluster, with where it was written (for validation messages). */
export interface StoreReference {
  /** ObjectStore name (parameters.barmanObjectName); undefined when the entry forgot it. */
  objectStore?: string;
  /** Folder in the store: parameters.serverName, else the Cluster's (target) or external cluster's name. */
  serverName: string;
  /** Path of the entry's parameters, e.g. ['spec', 'plugins', 0, 'parameters']. */
  path: (string | number)[];
}

export interface PluginReferences {
  clusterName: string;
  namespace: string;
  /** spec.plugins entry naming this plugin, when enabled (enabled defaults to true in CNPG). */
  target?: StoreReference & { isWALArchiver: boolean };
  /** externalClusters entry named by spec.bootstrap.recovery.source, when it uses this plugin. */
  recovery?: StoreReference;
  /** externalClusters entry named by spec.replica.source, when it uses this plugin. */
  replicaSource?: StoreReference;
}

export function clusterMeta(cluster: unknown): { name: string; namespace: string; uid?: string } {
  const meta = obj(obj(cluster)?.metadata);
  return { name: str(meta?.name) ?? '', namespace: str(meta?.namespace) ?? 'default', uid: str(meta?.uid) };
}

export function pluginReferences(cluster: unknown, pluginName: string): PluginReferences {
  const spec = obj(obj(cluster)?.spec) ?? {};
  const { name, namespace } = clusterMeta(cluster);
  const refs: PluginReferences = { clusterName: name, namespace };

  list(spec.plugins).forEach((raw, i) => {
    const entry = obj(raw);
    if (!entry || entry.name !== pluginName || entry.enabled === false || refs.target) return;
    const params = obj(entry.parameters) ?? {};
    refs.target = {
      objectStore: str(params.barmanObjectName),
      serverName: str(params.serverName) ?? name,
      path: ['spec', 'plugins', i, 'parameters'],
      isWALArchiver: entry.isWALArchiver === true,
    };
  });

  const external = (source: unknown): StoreReference | undefined => {
    const wanted = str(source);
    if (!wanted) return undefined;
    const externals = list(spec.externalClusters);
    const i = externals.findIndex((e) => obj(e)?.name === wanted);
    const plugin = obj(obj(externals[i])?.plugin);
    if (!plugin || plugin.name !== pluginName) return undefined;
    const params = obj(plugin.parameters) ?? {};
    return {
      objectStore: str(params.barmanObjectName),
      serverName: str(params.serverName) ?? wanted,
      path: ['spec', 'externalClusters', i, 'plugin', 'parameters'],
    };
  };
  refs.recovery = external(obj(obj(spec.bootstrap)?.recovery)?.source);
  const replica = obj(spec.replica);
  // A replica section that is present but disabled still names the source CNPG would follow once enabled.
  refs.replicaSource = external(replica?.source);
  return refs;
}

/** The distinct ObjectStore names a Cluster refers to, sorted (the Role's resourceNames). */
export function referencedStoreNames(refs: PluginReferences): string[] {
  const names = [refs.target, refs.recovery, refs.replicaSource].map((r) => r?.objectStore).filter((n): n is string => !!n);
  return [...new Set(names)].sort();
}
