/**
 * The plugin form of CNPG manifests (CNPG-I, reference cnpg-i-plugin.md §1.5): which ObjectStore
 * a Cluster archives and backs up to (its spec.plugins entry) and which one a recovery or replica
 * source reads (externalClusters[].plugin), with serverName defaulting as plugin-barman-cloud
 * does. One implementation for the CLI (through index.ts) and for the plugin's requests: it reads
 * only fields that the strict Cluster of a -f manifest and the lenient Cluster JSON of a request
 * both have.
 */
import { SKIP_EMPTY_CHECK_ANNOTATION } from '../util/cnpg.js';
import { annotationEncryption, type EncryptionRef } from './encryption.js';
import { UserError } from '../util/errors.js';

export const PGARK_PLUGIN_NAME = 'pgark.io';
export const BARMAN_CLOUD_PLUGIN_NAME = 'barman-cloud.cloudnative-pg.io';
/** Plugin names whose parameters the CLI reads as an ObjectStore reference: pgark's own and the one it stands in for. */
export const SERVED_PLUGIN_NAMES: readonly string[] = [PGARK_PLUGIN_NAME, BARMAN_CLOUD_PLUGIN_NAME];

/** CNPG's PluginConfiguration (spec.plugins[], externalClusters[].plugin). */
export interface PluginEntry {
  name: string;
  enabled?: boolean;
  isWALArchiver?: boolean;
  parameters?: Record<string, string>;
}

/** The parts of a Cluster the plugin form is read from. */
export interface PluginFormCluster {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec: {
    plugins?: PluginEntry[];
    backup?: { barmanObjectStore?: unknown };
    bootstrap?: { recovery?: { source?: string } };
    externalClusters?: { name: string; plugin?: PluginEntry }[];
  };
}

/** Which ObjectStore and folder (serverName) a plugin-form reference means. */
export interface StoreRef {
  namespace?: string;
  /** The ObjectStore's name (parameters.barmanObjectName). */
  objectName: string;
  serverName: string;
  /** Skip the empty-archive check (check_empty_wal_archive false, or CNPG's skip annotation). */
  skipEmptyCheck: boolean;
  /** The manifest field that sets serverName, for hints; the plugin's requests do not know it. */
  serverNameField?: string;
  /** The manifest field holding barmanObjectName, for a file:line:col when the ObjectStore is missing. */
  objectNameField?: string;
  /** The Secret with the age keys: parameter encryptionSecret, else the Cluster's pgark.io/encryption annotation. */
  encryption?: EncryptionRef;
}

export function enabledEntries(cluster: PluginFormCluster): PluginEntry[] {
  return (cluster.spec.plugins ?? []).filter((p) => p.enabled !== false);
}


function skipAnnotation(cluster: PluginFormCluster): boolean {
  return cluster.metadata.annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] === 'enabled';
}

/** `{encryption}` when the parameters (at `path`) or the Cluster's annotation name a Secret, else nothing. */
function encryptionOf(cluster: PluginFormCluster, parameters: Record<string, string>, path: string): Pick<StoreRef, 'encryption'> {
  const secret = parameters.encryptionSecret;
  const encryption = secret ? { secret, where: `${path}.encryptionSecret of Cluster "${cluster.metadata.name}"` } : annotationEncryption(cluster);
  return encryption ? { encryption } : {};
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
export function targetStoreRef(cluster: PluginFormCluster, pluginName: string, requestParameters: Record<string, string> = {}): StoreRef {
  const plugins = cluster.spec.plugins ?? [];
  const i = plugins.findIndex((p) => p.enabled !== false && p.name === pluginName);
  const entry = i < 0 ? undefined : plugins[i];
  const path = i < 0 ? undefined : `spec.plugins[${i}]`;
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
    serverNameField: path && `${path}.parameters.serverName`,
    objectNameField: path && !requestParameters.barmanObjectName ? `${path}.parameters.barmanObjectName` : undefined,
    ...encryptionOf(cluster, parameters, path ? `${path}.parameters` : 'the request parameters'),
  };
}

/** An external cluster's plugin store (recovery or replica source); serverName defaults to the external cluster's name. */
export function externalStoreRef(cluster: PluginFormCluster, pluginName: string, source: string): StoreRef {
  const externals = cluster.spec.externalClusters ?? [];
  const i = externals.findIndex((e) => e.name === source);
  const where = `spec.externalClusters[name=${source}] of Cluster "${cluster.metadata.name}"`;
  if (i < 0) throw new UserError(`${where} does not exist`, 'the recovery or replica source must name an entry of spec.externalClusters');
  const ext = externals[i];
  if (ext.plugin?.name !== pluginName) {
    throw new UserError(`${where} has no plugin section for "${pluginName}"`, `add plugin: {name: ${pluginName}, parameters: {barmanObjectName: ...}}`);
  }
  const parameters = ext.plugin.parameters ?? {};
  const path = `spec.externalClusters[${i}].plugin.parameters`;
  return {
    namespace: cluster.metadata.namespace,
    objectName: barmanObjectName(parameters, `the plugin section of ${where}`),
    serverName: parameters.serverName || ext.name,
    skipEmptyCheck: skipAnnotation(cluster),
    serverNameField: `${path}.serverName`,
    objectNameField: `${path}.barmanObjectName`,
    ...encryptionOf(cluster, parameters, path),
  };
}

/** The recovery source of spec.bootstrap.recovery (the restore job's WAL and backups). */
export function recoveryStoreRef(cluster: PluginFormCluster, pluginName: string): StoreRef {
  const source = cluster.spec.bootstrap?.recovery?.source;
  if (!source) throw new UserError(`Cluster "${cluster.metadata.name}" has no spec.bootstrap.recovery.source`, 'a recovery through the plugin names an external cluster with a plugin section');
  return externalStoreRef(cluster, pluginName, source);
}

/**
 * Whether `pluginName` must store the WAL CNPG hands it. CNPG calls Archive on every enabled plugin
 * with the WAL capability, archiver or not (CNPG#11351), so the plugin decides: it archives when
 * its entry says isWALArchiver: true, or when it is the only enabled plugin entry and the Cluster
 * has no in-tree barmanObjectStore and no other entry claims the role.
 */
export function isWalArchiver(cluster: PluginFormCluster, pluginName: string): boolean {
  const enabled = enabledEntries(cluster);
  const entry = enabled.find((p) => p.name === pluginName);
  if (!entry) return false;
  if (entry.isWALArchiver === true) return true;
  return enabled.length === 1 && !enabled.some((p) => p.isWALArchiver) && cluster.spec.backup?.barmanObjectStore == null;
}

/**
 * The served plugin entry (pgark.io or barman-cloud.cloudnative-pg.io) whose ObjectStore is the
 * Cluster's own archive for the CLI: the one that is the WAL archiver, else the only served one.
 * Undefined when there is none; two served entries and neither the archiver is ambiguous.
 */
export function servedTargetEntry(cluster: PluginFormCluster): PluginEntry | undefined {
  const served = enabledEntries(cluster).filter((p) => SERVED_PLUGIN_NAMES.includes(p.name));
  const archiver = served.find((p) => isWalArchiver(cluster, p.name));
  if (archiver || served.length <= 1) return archiver ?? served[0];
  throw new UserError(
    `Cluster "${cluster.metadata.name}" lists ${served.map((p) => `"${p.name}"`).join(' and ')} in spec.plugins and neither is the WAL archiver`,
    'set isWALArchiver: true on the entry whose ObjectStore holds this cluster\'s archive',
  );
}
