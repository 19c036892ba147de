/**
 * zod schemas of the CNPG manifests pgark reads (postgresql.cnpg.io/v1 Cluster, Backup,
 * ScheduledBackup, and v1 Secret), field for field from the CNPG API (see
 * /work/shared/reference/cnpg-barman-cloud.md section 1). Objects are strict: a key CNPG does
 * not have is an error. Fields CNPG has but pgark does not act on are wrapped in ignored(), so
 * `pgark check` can list them. Rules spanning several fields live in rules.ts.
 */
import { z } from 'zod';
import { isTargetTime } from './target-time.js';

/** Description marking a field pgark accepts (CNPG has it) but does not act on. */
export const IGNORED = 'pgark:ignored';

function ignored<T extends z.ZodType>(schema: T) {
  return schema.optional().describe(IGNORED);
}
const anything = z.unknown();
const opaqueObject = z.record(z.string(), z.unknown());
const stringMap = z.record(z.string(), z.string());
const stringList = z.array(z.string());

/** Kubernetes object name: DNS-1123 subdomain. */
const k8sName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
    message: 'must be a Kubernetes name: lower-case letters, digits, "-" and "."',
  });

export const secretKeySelector = z.strictObject({ name: z.string().min(1), key: z.string().min(1) });
/** corev1.SecretKeySelector (externalClusters ssl*, password) also has `optional`. */
const coreSecretKeySelector = z.strictObject({ name: z.string().min(1), key: z.string().min(1), optional: z.boolean().optional() });
const localObjectReference = z.strictObject({ name: k8sName });

export const encryption = z
  .enum(['', 'AES256', 'aws:kms'])
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const s3Credentials = z.strictObject({
  accessKeyId: secretKeySelector.optional(),
  secretAccessKey: secretKeySelector.optional(),
  region: secretKeySelector.optional(),
  sessionToken: secretKeySelector.optional(),
  inheritFromIAMRole: z.boolean().optional(),
});

const azureCredentials = z.strictObject({
  connectionString: secretKeySelector.optional(),
  storageAccount: secretKeySelector.optional(),
  storageKey: secretKeySelector.optional(),
  storageSasToken: secretKeySelector.optional(),
  inheritFromAzureAD: z.boolean().optional(),
  useDefaultAzureCredentials: z.boolean().optional(),
});

const googleCredentials = z.strictObject({
  applicationCredentials: secretKeySelector.optional(),
  gkeEnvironment: z.boolean().optional(),
});

const walConfiguration = z.strictObject({
  compression: z
    .enum(['', 'bzip2', 'gzip', 'lz4', 'snappy', 'xz', 'zstd'])
    .optional()
    .transform((v) => (v === '' ? undefined : v)),
  encryption,
  maxParallel: z.number().int().min(1).optional(),
  archiveAdditionalCommandArgs: stringList.optional(),
  restoreAdditionalCommandArgs: stringList.optional(),
});

const dataConfiguration = z.strictObject({
  // CNPG allows bzip2, gzip, lz4, snappy; pgark also reads and writes xz and zstd tars
  // (barman-cloud cannot restore those, which `pgark check` does not hide).
  compression: z
    .enum(['', 'bzip2', 'gzip', 'lz4', 'snappy', 'xz', 'zstd'])
    .optional()
    .transform((v) => (v === '' ? undefined : v)),
  encryption,
  jobs: z.number().int().min(1).max(2147483647).optional(),
  immediateCheckpoint: z.boolean().optional(),
  additionalCommandArgs: stringList.optional(),
  restoreAdditionalCommandArgs: stringList.optional(),
});

export const barmanObjectStore = z.strictObject({
  destinationPath: z.string().min(1),
  endpointURL: z.string().optional(),
  endpointCA: secretKeySelector.optional(),
  serverName: z.string().min(1).optional(),
  s3Credentials: s3Credentials.optional(),
  azureCredentials: azureCredentials.optional(),
  googleCredentials: googleCredentials.optional(),
  wal: walConfiguration.optional(),
  data: dataConfiguration.optional(),
  tags: stringMap.optional(),
  historyTags: stringMap.optional(),
});

const backupTarget = z.enum(['primary', 'prefer-standby']);
const backupMethod = z.enum(['barmanObjectStore', 'volumeSnapshot', 'plugin']);

const backupConfiguration = z.strictObject({
  barmanObjectStore: barmanObjectStore.optional(),
  retentionPolicy: z
    .string()
    .regex(/^[1-9][0-9]*[dwm]$/, { message: 'must be a number of days, weeks or months, e.g. 30d, 4w, 6m' })
    .optional(),
  target: backupTarget.optional(),
  volumeSnapshot: ignored(opaqueObject),
});

export const recoveryTarget = z.strictObject({
  backupID: z.string().optional(),
  targetTLI: z
    .string()
    .regex(/^(|latest|[1-9][0-9]*)$/, { message: 'must be "latest" or a positive timeline number' })
    .optional(),
  targetXID: z
    .string()
    .regex(/^[0-9]+$/, { message: 'must be a transaction ID (decimal, 32-bit)' })
    .refine((v) => Number(v) <= 4294967295, { message: 'must be a transaction ID (decimal, 32-bit)' })
    .optional(),
  targetName: z
    .string()
    .refine((v) => Buffer.byteLength(v) < 64, { message: 'must be shorter than 64 bytes' })
    // eslint-disable-next-line no-control-regex
    .refine((v) => !/[\x00-\x1f\x7f]/.test(v), { message: 'must not contain control characters' })
    .optional(),
  targetLSN: z
    .string()
    .regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, { message: 'must be an LSN such as 0/3000060' })
    .optional(),
  targetTime: z
    .string()
    .refine(isTargetTime, {
      message:
        'must be a timestamp: YYYY-MM-DD HH24:MI:SS[.FF6][TZH[:TZM]], RFC3339 (2024-05-01T12:00:00Z), or YYYY-MM-DDTHH:MM:SS',
    })
    .optional(),
  targetImmediate: z.boolean().optional(),
  exclusive: z.boolean().optional(),
});

const bootstrapRecovery = z.strictObject({
  backup: z.strictObject({ name: k8sName, endpointCA: secretKeySelector.optional() }).optional(),
  source: z.string().min(1).optional(),
  volumeSnapshots: ignored(opaqueObject),
  recoveryTarget: recoveryTarget.optional(),
  database: z.string().min(1).optional(),
  owner: z.string().min(1).optional(),
  secret: ignored(localObjectReference),
});

/**
 * CNPG's PluginConfiguration: an entry of spec.plugins, or externalClusters[].plugin. pgark reads
 * the entries named pgark.io or barman-cloud.cloudnative-pg.io (plugin-form.ts); others pass.
 */
const pluginEntry = z.strictObject({
  name: z.string().min(1),
  enabled: z.boolean().optional(),
  isWALArchiver: z.boolean().optional(),
  parameters: stringMap.optional(),
});

const externalCluster = z.strictObject({
  name: z.string().min(1),
  connectionParameters: stringMap.optional(),
  sslCert: coreSecretKeySelector.optional(),
  sslKey: coreSecretKeySelector.optional(),
  sslRootCert: coreSecretKeySelector.optional(),
  password: coreSecretKeySelector.optional(),
  barmanObjectStore: barmanObjectStore.optional(),
  plugin: pluginEntry.optional(),
});

/** Standard Kubernetes ObjectMeta; only name/namespace/labels/annotations matter to pgark. */
const objectMeta = z.strictObject({
  name: k8sName,
  namespace: k8sName.optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  generateName: ignored(z.string()),
  uid: ignored(z.string()),
  resourceVersion: ignored(z.string()),
  generation: ignored(z.number()),
  creationTimestamp: ignored(anything),
  deletionTimestamp: ignored(anything),
  deletionGracePeriodSeconds: ignored(z.number()),
  ownerReferences: ignored(z.array(opaqueObject)),
  finalizers: ignored(stringList),
  managedFields: ignored(z.array(opaqueObject)),
});

/** Every ClusterSpec field of CNPG 1.24-1.30; those pgark does not act on are ignored(). */
const clusterSpec = z.strictObject({
  backup: backupConfiguration.optional(),
  bootstrap: z
    .strictObject({
      recovery: bootstrapRecovery.optional(),
      initdb: ignored(opaqueObject),
      pg_basebackup: ignored(opaqueObject),
    })
    .optional(),
  externalClusters: z.array(externalCluster).optional(),
  // pgark reads only the major version from the image tag (to pick PostgreSQL binaries).
  imageName: ignored(z.string().min(1)),
  instances: ignored(z.number().int().min(1)),
  description: ignored(z.string()),
  inheritedMetadata: ignored(opaqueObject),
  imageCatalogRef: ignored(opaqueObject),
  imagePullPolicy: ignored(z.enum(['Always', 'Never', 'IfNotPresent'])),
  imagePullSecrets: ignored(z.array(opaqueObject)),
  schedulerName: ignored(z.string()),
  postgresUID: ignored(z.number().int()),
  postgresGID: ignored(z.number().int()),
  minSyncReplicas: ignored(z.number().int().min(0)),
  maxSyncReplicas: ignored(z.number().int().min(0)),
  postgresql: ignored(opaqueObject),
  replicationSlots: ignored(opaqueObject),
  replica: ignored(opaqueObject),
  superuserSecret: ignored(localObjectReference),
  enableSuperuserAccess: ignored(z.boolean()),
  certificates: ignored(opaqueObject),
  storage: ignored(opaqueObject),
  walStorage: ignored(opaqueObject),
  ephemeralVolumeSource: ignored(opaqueObject),
  ephemeralVolumesSizeLimit: ignored(opaqueObject),
  serviceAccountTemplate: ignored(opaqueObject),
  startDelay: ignored(z.number().int()),
  stopDelay: ignored(z.number().int()),
  smartShutdownTimeout: ignored(z.number().int()),
  switchoverDelay: ignored(z.number().int()),
  failoverDelay: ignored(z.number().int()),
  livenessProbeTimeout: ignored(z.number().int()),
  affinity: ignored(opaqueObject),
  topologySpreadConstraints: ignored(z.array(opaqueObject)),
  resources: ignored(opaqueObject),
  priorityClassName: ignored(z.string()),
  primaryUpdateStrategy: ignored(z.enum(['unsupervised', 'supervised'])),
  primaryUpdateMethod: ignored(z.enum(['switchover', 'restart'])),
  nodeMaintenanceWindow: ignored(opaqueObject),
  monitoring: ignored(opaqueObject),
  logLevel: ignored(z.enum(['error', 'warning', 'info', 'debug', 'trace'])),
  projectedVolumeTemplate: ignored(opaqueObject),
  env: ignored(z.array(opaqueObject)),
  envFrom: ignored(z.array(opaqueObject)),
  managed: ignored(opaqueObject),
  seccompProfile: ignored(opaqueObject),
  tablespaces: ignored(z.array(opaqueObject)),
  enablePDB: ignored(z.boolean()),
  plugins: z.array(pluginEntry).optional(),
  probes: ignored(opaqueObject),
  podSecurityContext: ignored(opaqueObject),
  securityContext: ignored(opaqueObject),
});

const pluginConfiguration = z.strictObject({ name: z.string().min(1), parameters: stringMap.optional() });

const backupSpecFields = {
  cluster: localObjectReference,
  target: backupTarget.optional(),
  method: backupMethod.default('barmanObjectStore'),
  online: z.boolean().optional(),
  onlineConfiguration: ignored(opaqueObject),
  pluginConfiguration: pluginConfiguration.optional(),
};

const envelope = <K extends string, S extends z.ZodType>(kind: K, spec: S) =>
  z.strictObject({
    apiVersion: z.literal('postgresql.cnpg.io/v1'),
    kind: z.literal(kind),
    metadata: objectMeta,
    spec,
    status: ignored(anything),
  });

export const clusterSchema = envelope('Cluster', clusterSpec);
export const backupSchema = envelope('Backup', z.strictObject(backupSpecFields));
export const scheduledBackupSchema = envelope(
  'ScheduledBackup',
  z.strictObject({
    ...backupSpecFields,
    schedule: z.string().min(1),
    suspend: z.boolean().default(false),
    immediate: z.boolean().default(false),
    backupOwnerReference: z.enum(['none', 'self', 'cluster']).default('none'),
  }),
);
export const secretSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: objectMeta,
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  type: ignored(z.string()),
  immutable: ignored(z.boolean()),
});

/** Kubernetes resource quantities: `512Mi`, `0.5`, `100m`. */
const quantity = z.union([z.string().min(1), z.number()]);

/**
 * plugin-barman-cloud's ObjectStore (barmancloud.cnpg.io/v1): the barmanObjectStore section as
 * its own resource. serverName is accepted by this schema only so that rules.ts can say where it
 * belongs (the Cluster's plugin parameters) instead of calling it an unknown field.
 */
export const objectStoreSchema = z.strictObject({
  apiVersion: z.literal('barmancloud.cnpg.io/v1'),
  kind: z.literal('ObjectStore'),
  metadata: objectMeta,
  spec: z.strictObject({
    configuration: barmanObjectStore,
    retentionPolicy: z
      .string()
      .regex(/^[1-9][0-9]*[dwm]$/, { message: 'must be a number of days, weeks or months, e.g. 30d, 4w, 6m' })
      .optional(),
    instanceSidecarConfiguration: z
      .strictObject({
        env: z.array(opaqueObject).optional(),
        resources: z
          .strictObject({ limits: z.record(z.string(), quantity).optional(), requests: z.record(z.string(), quantity).optional(), claims: ignored(z.array(opaqueObject)) })
          .optional(),
        retentionPolicyIntervalSeconds: z.number().int().min(1).default(1800),
        additionalContainerArgs: stringList.optional(),
        logLevel: z.enum(['error', 'warning', 'info', 'debug', 'trace']).optional(),
      })
      .optional(),
  }),
  status: ignored(anything),
});

/** A comparison and a count, as a drill's `expect.rows` says it: ">= 1000", "< 5", "= 0" (no operator: "="). */
export const ROWS_EXPECTATION = /^\s*(>=|<=|>|<|==|=)?\s*(\d+)\s*$/;
const LSN_TEXT = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** What a restore drill recovers to: the archive's end, a random time in the recoverable window, or a time or LSN. */
export function isDrillTarget(v: string): boolean {
  return v === 'latest' || v === 'random' || isTargetTime(v) || LSN_TEXT.test(v);
}
export const drillTarget = z.string().refine(isDrillTarget, {
  message: 'must be latest, random, a time (2024-05-01T12:00:00Z, or as recoveryTarget.targetTime takes it) or an LSN such as 0/3000060',
});

/** One SQL probe of a restore drill (`pgark drill --checks FILE`, ScheduledDrill spec.checks); docs/verification.md defines each expect form. */
export const drillCheck = z.strictObject({
  name: z.string().min(1).optional(),
  database: z.string().min(1),
  sql: z.string().min(1),
  expect: z
    .strictObject({
      rows: z.string().regex(ROWS_EXPECTATION, { message: 'must be a comparison and a row count, such as ">= 1000"' }).optional(),
      maxAgeSeconds: z.number().positive().optional(),
      nonEmpty: z.literal(true).optional(),
    })
    .refine((e) => e.rows !== undefined || e.maxAgeSeconds !== undefined || e.nonEmpty !== undefined, {
      message: 'expect needs at least one of rows, maxAgeSeconds, nonEmpty',
    }),
});
export const drillChecksFile = z.array(drillCheck);

/** pgark's own kind: restore drills on a schedule, run by `pgark agent`. */
export const scheduledDrillSchema = z.strictObject({
  apiVersion: z.literal('pgark.io/v1'),
  kind: z.literal('ScheduledDrill'),
  metadata: objectMeta,
  spec: z.strictObject({
    cluster: localObjectReference,
    schedule: z.string().min(1),
    target: drillTarget.default('latest'),
    checks: z.array(drillCheck).optional(),
    suspend: z.boolean().default(false),
    resources: z
      .strictObject({
        maxDiskBytes: z.number().int().positive().optional(),
        scratchDir: z.string().min(1).optional(),
      })
      .optional(),
  }),
  status: ignored(anything),
});

export const SCHEMAS = {
  Cluster: clusterSchema,
  Backup: backupSchema,
  ScheduledBackup: scheduledBackupSchema,
  Secret: secretSchema,
  ObjectStore: objectStoreSchema,
  ScheduledDrill: scheduledDrillSchema,
} as const;
export type ManifestKind = keyof typeof SCHEMAS;
