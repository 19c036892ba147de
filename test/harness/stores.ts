/**
 * Ready-made object stores for tests, one per provider and Azure credential form, so a test can
 * run unchanged on every provider and compare pgark with barman-cloud on the same bytes:
 *  - resolved(): a ResolvedObjectStore for openObjectStore();
 *  - manifest(): CNPG YAML (Cluster with backup.barmanObjectStore + the Secret it references) for CLI tests;
 *  - barman: the environment and options barman-cloud needs to reach the same store.
 * Each TestStore gets its own random prefix, so several can share one s3rver / Azurite.
 */
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import type { BarmanObjectStoreConfiguration, ResolvedObjectStore } from '../../src/config/types.js';
import { startS3rver, type S3rver } from './s3rver.js';
import { startAzurite, type Azurite } from './azurite.js';
import { scratchDir } from './tmp.js';
import { BARMAN_PYTHON_ENV } from './barman.js';

export type StoreKind = 'file' | 's3' | 's3-tls' | 'azure-connection-string' | 'azure-key' | 'azure-sas';

/** Every provider and Azure credential form (s3-tls is extra: s3rver over https with endpointCA). */
export const STORE_KINDS: readonly StoreKind[] = ['file', 's3', 'azure-connection-string', 'azure-key', 'azure-sas'];

export interface ManifestOptions {
  clusterName: string;
  serverName?: string;
  /** Extra barmanObjectStore fields (wal, data, tags, ...). */
  objectStore?: Record<string, unknown>;
  /** Extra spec.backup fields (retentionPolicy, target, ...). */
  backup?: Record<string, unknown>;
  /** Extra spec fields. */
  spec?: Record<string, unknown>;
}

export interface TestStore {
  kind: StoreKind;
  provider: 'file' | 's3' | 'azure';
  destinationPath: string;
  endpointURL?: string;
  /** The backing servers, when the provider has one. */
  s3rver?: S3rver;
  azurite?: Azurite;
  /** Secret values by key, as the manifest's Secret holds them (for --secrets-dir layouts). */
  secretName: string;
  secretValues: Record<string, string>;
  /** The barmanObjectStore section (credentials as SecretKeySelectors into secretName). */
  objectStoreConfig(serverName?: string): BarmanObjectStoreConfiguration;
  resolved(serverName?: string): ResolvedObjectStore;
  /** A Cluster + Secret multi-document YAML. */
  manifest(opts: ManifestOptions): string;
  /**
   * How barman-cloud reaches the same store, its environment already holding barman.ts's Python
   * settings; undefined for file:// (barman-cloud has no such provider).
   */
  barman?: { env: Record<string, string>; args: string[] };
  /** Stops the servers this store started (not those passed in) and removes file:// data. */
  stop(): Promise<void>;
}

export interface StoreOptions {
  /** Path under the bucket/container (default: a random "t-xxxxxxxx"). */
  prefix?: string;
  /** Reuse a running server instead of starting one. */
  s3rver?: S3rver;
  azurite?: Azurite;
}

const SECRET = 'pgark-store-credentials';

export async function startStore(kind: StoreKind, opts: StoreOptions = {}): Promise<TestStore> {
  const prefix = opts.prefix ?? `t-${randomBytes(4).toString('hex')}`;
  if (kind === 'file') {
    const dir = scratchDir('filestore');
    return buildStore({ kind, provider: 'file', destinationPath: `file://${dir.path}/${prefix}`, secretValues: {}, credentials: {}, stop: async () => dir.cleanup() });
  }
  if (kind === 's3' || kind === 's3-tls') {
    const tls = kind === 's3-tls';
    const s3 = opts.s3rver && opts.s3rver.tls === tls ? opts.s3rver : await startS3rver({ tls });
    const owned = s3 !== opts.s3rver;
    const secretValues: Record<string, string> = { ACCESS_KEY_ID: s3.accessKeyId, ACCESS_SECRET_KEY: s3.secretAccessKey, REGION: s3.region };
    if (s3.caPem) secretValues['ca.crt'] = s3.caPem;
    return buildStore({
      kind,
      provider: 's3',
      destinationPath: `s3://${s3.bucket}/${prefix}`,
      endpointURL: s3.endpoint,
      s3rver: s3,
      secretValues,
      credentials: {
        endpointCA: s3.caPem ? { name: SECRET, key: 'ca.crt' } : undefined,
        s3Credentials: {
          accessKeyId: { name: SECRET, key: 'ACCESS_KEY_ID' },
          secretAccessKey: { name: SECRET, key: 'ACCESS_SECRET_KEY' },
          region: { name: SECRET, key: 'REGION' },
        },
      },
      barman: {
        env: {
          AWS_ACCESS_KEY_ID: s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
          AWS_DEFAULT_REGION: s3.region,
          ...(s3.caFile ? { AWS_CA_BUNDLE: s3.caFile } : {}),
        },
        args: ['--cloud-provider', 'aws-s3', '--endpoint-url', s3.endpoint],
      },
      stop: async () => {
        if (owned) await s3.stop();
      },
    });
  }
  const az = opts.azurite ?? (await startAzurite());
  const owned = az !== opts.azurite;
  const azureForms: Record<string, { values: Record<string, string>; creds: NonNullable<BarmanObjectStoreConfiguration['azureCredentials']>; barmanConnectionString: string }> = {
    'azure-connection-string': {
      values: { AZURE_CONNECTION_STRING: az.connectionString },
      creds: { connectionString: { name: SECRET, key: 'AZURE_CONNECTION_STRING' } },
      barmanConnectionString: az.connectionString,
    },
    'azure-key': {
      values: { AZURE_STORAGE_ACCOUNT: az.account, AZURE_STORAGE_KEY: az.accountKey },
      creds: { storageAccount: { name: SECRET, key: 'AZURE_STORAGE_ACCOUNT' }, storageKey: { name: SECRET, key: 'AZURE_STORAGE_KEY' } },
      barmanConnectionString: az.connectionString,
    },
    'azure-sas': {
      values: { AZURE_STORAGE_ACCOUNT: az.account, AZURE_STORAGE_SAS_TOKEN: az.sasToken },
      creds: { storageAccount: { name: SECRET, key: 'AZURE_STORAGE_ACCOUNT' }, storageSasToken: { name: SECRET, key: 'AZURE_STORAGE_SAS_TOKEN' } },
      // barman-cloud insists on a connection string for the emulator URL form; this one carries the SAS.
      barmanConnectionString: az.sasConnectionString,
    },
  };
  const form = azureForms[kind];
  return buildStore({
    kind,
    provider: 'azure',
    destinationPath: `${az.blobEndpoint}/${az.container}/${prefix}`,
    azurite: az,
    secretValues: form.values,
    credentials: { azureCredentials: form.creds },
    barman: {
      env: { AZURE_STORAGE_CONNECTION_STRING: form.barmanConnectionString },
      args: ['--cloud-provider', 'azure-blob-storage'],
    },
    stop: async () => {
      if (owned) await az.stop();
    },
  });
}

interface StoreParts {
  kind: StoreKind;
  provider: TestStore['provider'];
  destinationPath: string;
  endpointURL?: string;
  s3rver?: S3rver;
  azurite?: Azurite;
  secretValues: Record<string, string>;
  credentials: Pick<BarmanObjectStoreConfiguration, 'endpointCA' | 's3Credentials' | 'azureCredentials'>;
  barman?: TestStore['barman'];
  stop(): Promise<void>;
}

function buildStore(p: StoreParts): TestStore {
  const objectStoreConfig = (serverName?: string): BarmanObjectStoreConfiguration => {
    const cfg: BarmanObjectStoreConfiguration = { destinationPath: p.destinationPath };
    if (p.endpointURL) cfg.endpointURL = p.endpointURL;
    if (p.credentials.endpointCA) cfg.endpointCA = p.credentials.endpointCA;
    if (serverName) cfg.serverName = serverName;
    if (p.credentials.s3Credentials) cfg.s3Credentials = p.credentials.s3Credentials;
    if (p.credentials.azureCredentials) cfg.azureCredentials = p.credentials.azureCredentials;
    return cfg;
  };
  const v = p.secretValues;
  return {
    kind: p.kind,
    provider: p.provider,
    destinationPath: p.destinationPath,
    endpointURL: p.endpointURL,
    s3rver: p.s3rver,
    azurite: p.azurite,
    secretName: SECRET,
    secretValues: v,
    barman: p.barman && { args: p.barman.args, env: { ...p.barman.env, ...BARMAN_PYTHON_ENV } },
    stop: p.stop,
    objectStoreConfig,
    resolved: (serverName = 'pg') => ({
      destinationPath: p.destinationPath,
      endpointURL: p.endpointURL,
      endpointCA: v['ca.crt'],
      serverName,
      s3: p.provider === 's3' ? { accessKeyId: v.ACCESS_KEY_ID, secretAccessKey: v.ACCESS_SECRET_KEY, region: v.REGION } : undefined,
      azure:
        p.provider === 'azure'
          ? {
              connectionString: v.AZURE_CONNECTION_STRING,
              storageAccount: v.AZURE_STORAGE_ACCOUNT,
              storageKey: v.AZURE_STORAGE_KEY,
              storageSasToken: v.AZURE_STORAGE_SAS_TOKEN,
            }
          : undefined,
      credentialSource: p.provider === 'file' ? 'none (local directory)' : `Secret "${SECRET}" (test store ${p.kind})`,
      config: objectStoreConfig(serverName),
    }),
    manifest: (opts) => {
      const cluster = {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'Cluster',
        metadata: { name: opts.clusterName },
        spec: {
          instances: 1,
          ...opts.spec,
          backup: { ...opts.backup, barmanObjectStore: { ...objectStoreConfig(opts.serverName), ...opts.objectStore } },
        },
      };
      const docs: unknown[] = [cluster];
      if (Object.keys(v).length > 0) docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET }, type: 'Opaque', stringData: v });
      return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
    },
  };
}
