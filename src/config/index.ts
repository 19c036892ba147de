/**
 * Public entry of the config layer. PROVISIONAL minimal implementation (no validation) so that
 * other modules can run while the config work lands; the signatures below are the contract.
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type {
  BarmanObjectStoreConfiguration,
  Cluster,
  ManifestSet,
  ResolvedObjectStore,
  SecretKeySelector,
} from './types.js';
import { UserError } from '../util/errors.js';

export interface SecretResolver {
  /** The secret's value as text. Throws UserError naming the secret and key (never the value). */
  get(selector: SecretKeySelector): Promise<string>;
}

export interface ConfigContext {
  manifests: ManifestSet;
  secrets: SecretResolver;
}

export interface LoadOptions {
  files: string[];
  secretsDir?: string;
}

function expand(paths: string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory() ? readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(p, f)) : [p],
  );
}

export async function loadContext(opts: LoadOptions): Promise<ConfigContext> {
  const manifests: ManifestSet = { clusters: [], backups: [], scheduledBackups: [], secrets: [] };
  for (const file of expand(opts.files)) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const obj = doc.toJS() as any;
      if (!obj) continue;
      const origin = { file, position: { file, line: 1, column: 1 }, positionOf: () => undefined };
      if (obj.kind === 'Cluster') manifests.clusters.push({ ...obj, origin, ignoredFields: [] });
      else if (obj.kind === 'Backup') manifests.backups.push({ ...obj, origin, ignoredFields: [] });
      else if (obj.kind === 'ScheduledBackup') manifests.scheduledBackups.push({ ...obj, origin, ignoredFields: [] });
      else if (obj.kind === 'Secret') {
        const values: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(obj.data ?? {})) values[k] = Buffer.from(String(v), 'base64');
        for (const [k, v] of Object.entries(obj.stringData ?? {})) values[k] = Buffer.from(String(v));
        manifests.secrets.push({ apiVersion: 'v1', kind: 'Secret', metadata: obj.metadata, values, origin });
      }
    }
  }
  const secrets: SecretResolver = {
    async get(sel) {
      const s = manifests.secrets.find((x) => x.metadata.name === sel.name);
      const v = s?.values[sel.key];
      if (v) return v.toString('utf8');
      if (opts.secretsDir && existsSync(join(opts.secretsDir, sel.name, sel.key))) {
        return readFileSync(join(opts.secretsDir, sel.name, sel.key), 'utf8');
      }
      throw new UserError(`secret "${sel.name}" key "${sel.key}" not found`);
    },
  };
  return { manifests, secrets };
}

/** The Cluster named `name`, or the only Cluster when no name is given. */
export function findCluster(set: ManifestSet, name?: string): Cluster {
  const found = name ? set.clusters.filter((c) => c.metadata.name === name) : set.clusters;
  if (found.length === 1) return found[0];
  throw new UserError(name ? `no Cluster named "${name}"` : `expected exactly one Cluster, found ${found.length}`);
}

/** Resolves the secrets of a barmanObjectStore; serverName defaults to `defaultServerName`. */
export async function resolveObjectStore(
  ctx: ConfigContext,
  store: BarmanObjectStoreConfiguration,
  defaultServerName: string,
): Promise<ResolvedObjectStore> {
  const get = (sel?: SecretKeySelector) => (sel ? ctx.secrets.get(sel) : Promise.resolve(undefined));
  const r: ResolvedObjectStore = {
    destinationPath: store.destinationPath,
    endpointURL: store.endpointURL,
    endpointCA: await get(store.endpointCA),
    serverName: store.serverName ?? defaultServerName,
    credentialSource: 'manifest secrets',
    config: store,
  };
  if (store.s3Credentials) {
    const c = store.s3Credentials;
    r.s3 = {
      accessKeyId: await get(c.accessKeyId),
      secretAccessKey: await get(c.secretAccessKey),
      sessionToken: await get(c.sessionToken),
      region: await get(c.region),
      inheritFromIAMRole: c.inheritFromIAMRole,
    };
  }
  if (store.azureCredentials) {
    const c = store.azureCredentials;
    r.azure = {
      connectionString: await get(c.connectionString),
      storageAccount: await get(c.storageAccount),
      storageKey: await get(c.storageKey),
      storageSasToken: await get(c.storageSasToken),
      inheritFromAzureAD: c.inheritFromAzureAD,
      useDefaultAzureCredentials: c.useDefaultAzureCredentials,
    };
  }
  return r;
}

/** The Cluster's own spec.backup.barmanObjectStore, resolved (serverName defaults to the cluster name). */
export async function clusterObjectStore(ctx: ConfigContext, cluster: Cluster): Promise<ResolvedObjectStore> {
  const store = cluster.spec.backup?.barmanObjectStore;
  if (!store) {
    throw new UserError(`Cluster "${cluster.metadata.name}" has no spec.backup.barmanObjectStore`, 'add a backup.barmanObjectStore section (see the seed document)');
  }
  return resolveObjectStore(ctx, store, cluster.metadata.name);
}
