/**
 * Typed view of the CNPG manifests pgark acts on (postgresql.cnpg.io/v1), after validation
 * and defaulting. Field names are CNPG's JSON names. src/config/schema.ts (with rules.ts) validates
 * raw YAML into these types; every other module reads only these.
 */
import type { SourcePosition } from '../util/errors.js';
import type { ObjectStoreOptions } from '../storage/options.js';

export interface SecretKeySelector {
  name: string;
  key: string;
}

export interface S3Credentials {
  accessKeyId?: SecretKeySelector;
  secretAccessKey?: SecretKeySelector;
  region?: SecretKeySelector;
  sessionToken?: SecretKeySelector;
  inheritFromIAMRole?: boolean;
}

export interface AzureCredentials {
  connectionString?: SecretKeySelector;
  storageAccount?: SecretKeySelector;
  storageKey?: SecretKeySelector;
  storageSasToken?: SecretKeySelector;
  inheritFromAzureAD?: boolean;
  useDefaultAzureCredentials?: boolean;
}

export interface GoogleCredentials {
  applicationCredentials?: SecretKeySelector;
  gkeEnvironment?: boolean;
}

export type WalCompression = 'bzip2' | 'gzip' | 'lz4' | 'snappy' | 'xz' | 'zstd';
/** CNPG allows bzip2, gzip, lz4, snappy for data; pgark also accepts xz and zstd (readable by pgark only). */
export type DataCompression = 'bzip2' | 'gzip' | 'lz4' | 'snappy' | 'xz' | 'zstd';
export type Encryption = 'AES256' | 'aws:kms';

export interface WalBackupConfiguration {
  compression?: WalCompression;
  encryption?: Encryption;
  maxParallel?: number;
  archiveAdditionalCommandArgs?: string[];
  restoreAdditionalCommandArgs?: string[];
}

export interface DataBackupConfiguration {
  compression?: DataCompression;
  encryption?: Encryption;
  jobs?: number;
  immediateCheckpoint?: boolean;
  additionalCommandArgs?: string[];
  restoreAdditionalCommandArgs?: string[];
}

export interface BarmanObjectStoreConfiguration {
  destinationPath: string;
  endpointURL?: string;
  endpointCA?: SecretKeySelector;
  serverName?: string;
  s3Credentials?: S3Credentials;
  azureCredentials?: AzureCredentials;
  googleCredentials?: GoogleCredentials;
  wal?: WalBackupConfiguration;
  data?: DataBackupConfiguration;
  tags?: Record<string, string>;
  historyTags?: Record<string, string>;
}

export interface BackupConfiguration {
  barmanObjectStore?: BarmanObjectStoreConfiguration;
  retentionPolicy?: string;
  target?: 'primary' | 'prefer-standby';
  volumeSnapshot?: unknown;
}

export interface RecoveryTarget {
  backupID?: string;
  targetTLI?: string;
  targetXID?: string;
  targetName?: string;
  targetLSN?: string;
  targetTime?: string;
  targetImmediate?: boolean;
  exclusive?: boolean;
}

export interface BootstrapRecovery {
  backup?: { name: string; endpointCA?: SecretKeySelector };
  source?: string;
  volumeSnapshots?: unknown;
  recoveryTarget?: RecoveryTarget;
  database?: string;
  owner?: string;
  secret?: { name: string };
}

export interface ExternalCluster {
  name: string;
  connectionParameters?: Record<string, string>;
  barmanObjectStore?: BarmanObjectStoreConfiguration;
  plugin?: unknown;
  sslCert?: SecretKeySelector;
  sslKey?: SecretKeySelector;
  sslRootCert?: SecretKeySelector;
  password?: SecretKeySelector;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Where a document came from, for error messages. */
export interface DocumentOrigin {
  file: string;
  /** Position of the document start. */
  position: SourcePosition;
  /** Position of a field by its dotted path (e.g. "spec.backup.retentionPolicy"), when known. */
  positionOf(path: string): SourcePosition | undefined;
}

export interface Cluster {
  apiVersion: 'postgresql.cnpg.io/v1';
  kind: 'Cluster';
  metadata: ObjectMeta;
  spec: {
    instances?: number;
    imageName?: string;
    backup?: BackupConfiguration;
    bootstrap?: {
      recovery?: BootstrapRecovery;
      initdb?: Record<string, unknown>;
      pg_basebackup?: Record<string, unknown>;
    };
    externalClusters?: ExternalCluster[];
    [ignoredField: string]: unknown;
  };
  origin: DocumentOrigin;
  /** Fields accepted because CNPG has them, which pgark does not act on (dotted paths). */
  ignoredFields: string[];
}

/** What a Backup and a ScheduledBackup share (CNPG copies these into each scheduled Backup). */
export interface BackupSpecCommon {
  cluster: { name: string };
  target?: 'primary' | 'prefer-standby';
  method?: 'barmanObjectStore' | 'volumeSnapshot' | 'plugin';
  online?: boolean;
  onlineConfiguration?: unknown;
  pluginConfiguration?: unknown;
}

export interface Backup {
  apiVersion: 'postgresql.cnpg.io/v1';
  kind: 'Backup';
  metadata: ObjectMeta;
  spec: BackupSpecCommon;
  origin: DocumentOrigin;
  ignoredFields: string[];
}

export interface ScheduledBackup {
  apiVersion: 'postgresql.cnpg.io/v1';
  kind: 'ScheduledBackup';
  metadata: ObjectMeta;
  spec: BackupSpecCommon & {
    schedule: string;
    suspend?: boolean;
    immediate?: boolean;
    backupOwnerReference?: 'none' | 'self' | 'cluster';
  };
  origin: DocumentOrigin;
  ignoredFields: string[];
}

export interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ObjectMeta;
  /** Decoded values (data is base64-decoded, stringData wins over data as in Kubernetes). */
  values: Record<string, Buffer>;
  origin: DocumentOrigin;
}

export interface ManifestSet {
  clusters: Cluster[];
  backups: Backup[];
  scheduledBackups: ScheduledBackup[];
  secrets: Secret[];
  /** Documents of kinds pgark does not read (e.g. a ConfigMap in a manifest directory), one line each. */
  notes?: string[];
}

/**
 * A barmanObjectStore with its secrets resolved: what the storage layer needs to connect.
 * Never log or print this object; use describeCredentialSource() for a safe summary.
 */
export interface ResolvedObjectStore extends ObjectStoreOptions {
  /** Folder under destinationPath: serverName, defaulting to the cluster (or external cluster) name. */
  serverName: string;
  google?: { applicationCredentials?: string; gkeEnvironment?: boolean };
  /** Human-readable description of where the credentials came from (names only, never values). */
  credentialSource: string;
  config: BarmanObjectStoreConfiguration;
}
