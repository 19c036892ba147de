/**
 * Which ObjectStores a Cluster (the JSON CNPG sends in every operator-side call, read with the
 * plugin's lenient readCluster) asks this plugin to use: the archive/backup target of
 * spec.plugins, the recovery source and the replica source of spec.externalClusters, each with
 * the field path it was written at, for validation messages.
 */
import type { PluginCluster } from '../config.js';

export type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}
export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** One use of this plugin by the Cluster. */
export interface StoreReference {
  /** ObjectStore name (parameters.barmanObjectName); undefined when the entry forgot it. */
  objectStore?: string;
  /** Folder in the store: parameters.serverName, else the Cluster's (target) or external cluster's name. */
  serverName: string;
  /** Path of the entry's parameters, e.g. ['spec', 'plugins', '0', 'parameters']. */
  path: string[];
}

export interface PluginReferences {
  clusterName: string;
  namespace: string;
  /** The enabled spec.plugins entry naming this plugin (enabled defaults to true in CNPG). */
  target?: StoreReference & { isWALArchiver: boolean };
  /** The externalClusters entry named by spec.bootstrap.recovery.source, when it uses this plugin. */
  recovery?: StoreReference;
  /** The externalClusters entry named by spec.replica.source, when it uses this plugin. */
  replicaSource?: StoreReference;
}

export function pluginReferences(cluster: PluginCluster, pluginName: string): PluginReferences {
  const { spec, metadata } = cluster;
  const refs: PluginReferences = { clusterName: metadata.name, namespace: metadata.namespace ?? 'default' };
  const i = (spec.plugins ?? []).findIndex((p) => p.name === pluginName && p.enabled !== false);
  if (i >= 0) {
    const entry = spec.plugins![i];
    refs.target = {
      objectStore: entry.parameters?.barmanObjectName || undefined,
      serverName: entry.parameters?.serverName || metadata.name,
      path: ['spec', 'plugins', String(i), 'parameters'],
      isWALArchiver: entry.isWALArchiver === true,
    };
  }
  const external = (source: string | undefined): StoreReference | undefined => {
    const externals = spec.externalClusters ?? [];
    const j = externals.findIndex((e) => e.name === source);
    const plugin = externals[j]?.plugin;
    if (!source || plugin?.name !== pluginName) return undefined;
    return {
      objectStore: plugin.parameters?.barmanObjectName || undefined,
      serverName: plugin.parameters?.serverName || source,
      path: ['spec', 'externalClusters', String(j), 'plugin', 'parameters'],
    };
  };
  refs.recovery = external(spec.bootstrap?.recovery?.source);
  // A replica section present but disabled still names the source CNPG follows once it is enabled.
  refs.replicaSource = external(spec.replica?.source);
  return refs;
}

/** The distinct ObjectStore names a Cluster refers to, sorted (the Role's resourceNames). */
export function referencedStoreNames(refs: PluginReferences): string[] {
  const names = [refs.target, refs.recovery, refs.replicaSource].map((r) => r?.objectStore).filter((n): n is string => !!n);
  return [...new Set(names)].sort();
}
