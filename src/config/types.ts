/**
 * Typed view of the CNPG manifests pgark acts on (postgresql.cnpg.io/v1), after validation
 * and defaulting. Field names are CNPG's JSON names. The types are the outputs of the zod schemas
 * (src/config/schema.ts), which validate raw YAML into them (with rules.ts), so the two cannot
 * drift; every other module reads only these.
 */
import type { z } from 'zod';
import type { SourcePosition } from '../util/errors.js';
import type { ObjectStoreOptions } from '../storage/options.js';
import type { AgeKeys } from '../codec/age.js';
import type {
  backupSchema,
  barmanObjectStore,
  clusterSchema,
  drillCheck,
  encryption,
  objectStoreSchema,
  recoveryTarget,
  scheduledBackupSchema,
  scheduledDrillSchema,
  secretKeySelector,
  secretSchema,
} from './schema.js';

export type SecretKeySelector = z.output<typeof secretKeySelector>;
export type Encryption = NonNullable<z.output<typeof encryption>>;
export type BarmanObjectStoreConfiguration = z.output<typeof barmanObjectStore>;
export type RecoveryTarget = z.output<typeof recoveryTarget>;

/** Where a document came from, for error messages. */
export interface DocumentOrigin {
  file: string;
  /** Position of the document start. */
  position: SourcePosition;
  /** Position of a field by its dotted path (e.g. "spec.backup.retentionPolicy"), when known. */
  positionOf(path: string): SourcePosition | undefined;
}

/** What validation adds to a parsed document. */
interface Validated {
  origin: DocumentOrigin;
  /** Fields accepted because CNPG has them, which pgark does not act on (dotted paths). */
  ignoredFields: string[];
}

export type Cluster = z.output<typeof clusterSchema> & Validated;
export type Backup = z.output<typeof backupSchema> & Validated;
export type ScheduledBackup = z.output<typeof scheduledBackupSchema> & Validated;
export type ScheduledDrill = z.output<typeof scheduledDrillSchema> & Validated;
export type DrillCheck = z.output<typeof drillCheck>;

/** plugin-barman-cloud's ObjectStore: spec.configuration is a barmanObjectStore without serverName. */
export type ObjectStore = z.output<typeof objectStoreSchema> & Validated;

export type Secret = Pick<z.output<typeof secretSchema>, 'apiVersion' | 'kind' | 'metadata'> & {
  /** Decoded values (data is base64-decoded, stringData wins over data as in Kubernetes). */
  values: Record<string, Buffer>;
  origin: DocumentOrigin;
};

export interface ManifestSet {
  clusters: Cluster[];
  backups: Backup[];
  scheduledBackups: ScheduledBackup[];
  scheduledDrills: ScheduledDrill[];
  secrets: Secret[];
  /** ObjectStore resources (barmancloud.cnpg.io/v1), which the CNPG-I plugin reads. */
  objectStores: ObjectStore[];
  /** Documents of kinds pgark does not read (e.g. a ConfigMap in a manifest directory), one line each. */
  notes?: string[];
}

/**
 * Where the manifests set a store's parts: dotted paths of the Cluster (spec.backup.barmanObjectStore,
 * spec.plugins[0].parameters.serverName) or of an ObjectStore, so that hints name the field of the
 * form in use (in-tree or plugin).
 */
export interface StoreFields {
  /** The barmanObjectStore block: spec.backup.barmanObjectStore, or "ObjectStore NAME spec.configuration". */
  config: string;
  serverName: string;
  retentionPolicy: string;
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
  /** The retention policy that goes with this store: spec.backup.retentionPolicy, or the ObjectStore's spec.retentionPolicy. */
  retentionPolicy?: string;
  /** Where the manifests set this store (absent when it was built outside them). */
  fields?: StoreFields;
  /** Client-side age keys (Secret values: never print); objects are written in the clear without them. */
  age?: AgeKeys;
}
