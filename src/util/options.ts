/**
 * Every option and environment variable of pgark, as data. The commander definitions
 * (src/cli/options.ts), the WAL fast path's parser (src/wal/client.ts), `pgark --help` and
 * docs/options.md (`npm run docs:options`) are all made from this table, so they cannot disagree.
 *
 * It lives at the bottom layer because the archive_command fast path and the foundations read
 * their PGARK_* settings through it: it must load nothing but node builtins.
 */
import { UserError } from './errors.js';

export type OptionType =
  | { kind: 'string' }
  | { kind: 'int'; min: number; max?: number }
  | { kind: 'bool' }
  | { kind: 'duration' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list' };

export interface OptionSpec {
  /** commander's syntax: '-f, --file <path>', '--json', '--no-daemon'. Absent for a variable that has no flag. */
  readonly flags?: string;
  /** The variable that sets it when the flag is absent. */
  readonly env?: string;
  readonly type: OptionType;
  /** The default as the user would write it; for a variable without a flag, what unset means. */
  readonly default?: string;
  readonly description: string;
  /** Left out of --help (internal flags). */
  readonly hidden?: boolean;
  /** Who reads the variable, when that is not just the commands taking the flag. */
  readonly readBy?: string;
}

const str = { kind: 'string' } as const;
const bool = { kind: 'bool' } as const;
const duration = { kind: 'duration' } as const;
const list = { kind: 'list' } as const;
const int = (min: number, max?: number) => ({ kind: 'int', min, max }) as const;
const oneOf = (...values: string[]) => ({ kind: 'enum', values }) as const;

// Several entries share a flag (--cluster, --jobs, --json, ...) where its wording or default differs
// between commands: an entry is one meaning of a flag.
export const OPTIONS = {
  file: {
    flags: '-f, --file <path>',
    env: 'PGARK_CONFIG',
    type: list,
    default: '[]',
    description: 'CNPG manifest file or directory of *.yaml (repeatable; default $PGARK_CONFIG)',
  },
  secretsDir: { flags: '--secrets-dir <dir>', type: str, description: 'Kubernetes-style mounted secrets: DIR/<secret name>/<key>' },
  json: { flags: '--json', type: bool, description: 'machine-readable output' },

  pghost: { flags: '--pghost <host>', env: 'PGHOST', type: str, description: 'PostgreSQL host or socket directory (default $PGHOST)' },
  pgport: { flags: '--pgport <port>', env: 'PGPORT', type: int(1, 65535), description: 'PostgreSQL port (default $PGPORT or 5432)' },
  pguser: { flags: '--pguser <user>', env: 'PGUSER', type: str, description: 'PostgreSQL user (default $PGUSER)' },
  pgpassword: { flags: '--pgpassword <password>', env: 'PGPASSWORD', type: str, description: 'PostgreSQL password (prefer $PGPASSWORD)' },
  pgdatabase: { flags: '--pgdatabase <db>', env: 'PGDATABASE', type: str, description: 'PostgreSQL database (default $PGDATABASE or postgres)' },
  pgdata: { flags: '--pgdata <dir>', env: 'PGDATA', type: str, description: 'local data directory (default $PGDATA)' },

  cluster: { flags: '--cluster <name>', type: str, description: 'Cluster to use when the manifests hold several' },
  checkCluster: { flags: '--cluster <name>', type: str, description: 'the Cluster to check when the manifests hold several' },
  restoreCluster: { flags: '--cluster <name>', type: str, description: 'the Cluster to recover when the manifests hold several' },

  backupName: { flags: '--name <name>', type: str, description: 'backup_name recorded in backup.info (recovery can select the backup by it)' },
  immediateCheckpoint: { flags: '--immediate-checkpoint', type: bool, description: 'request an immediate checkpoint (default: data.immediateCheckpoint)' },
  compression: {
    flags: '--compression <codec>',
    type: oneOf('none', 'gzip', 'bzip2', 'snappy', 'lz4', 'zstd', 'xz'),
    description: 'none, gzip, bzip2, snappy (barman-cloud restorable), lz4, zstd (pgark only); default: data.compression',
  },
  jobs: { flags: '--jobs <n>', type: int(1), description: 'compression workers and parts uploaded at once (default: data.jobs or 2)' },
  method: {
    flags: '--method <method>',
    type: oneOf('auto', 'local', 'remote'),
    default: 'auto',
    description: "auto (local when --pgdata/PGDATA is the server's data directory), local or remote (BASE_BACKUP)",
  },
  backupTarget: {
    flags: '--target <target>',
    type: oneOf('primary', 'prefer-standby'),
    description: "CNPG's Backup spec.target: prefer-standby reads the standby given by --standby-host when it streams, else the primary (default: the Cluster's spec.backup.target, else primary)",
  },
  standbyHost: { flags: '--standby-host <host>', env: 'PGARK_STANDBY_HOST', type: str, description: 'a streaming standby of the server to back up from (default: the pgark.io/backup-standby annotation)' },
  standbyPort: { flags: '--standby-port <port>', env: 'PGARK_STANDBY_PORT', type: int(1, 65535), description: "the standby's port (default: the primary's)" },
  walTimeout: { flags: '--wal-timeout <seconds>', type: int(1), default: '300', description: 'how long to wait for the end WAL segment to be archived' },
  backupType: {
    flags: '--type <type>',
    type: oneOf('full', 'incremental'),
    default: 'full',
    description: 'full, or incremental: only the blocks changed since the newest backup are stored, under pgark-incremental/ (pgark-only; needs --method local)',
  },
  noProgress: { flags: '--no-progress', type: bool, description: 'no progress display' },
  cascade: { flags: '--cascade', type: bool, description: 'backup delete: also delete the incremental backups that need this one (newest first)' },

  restoreStart: {
    flags: '--start',
    type: bool,
    description: 'start PostgreSQL, wait until it reaches the target and promotes, ensure database/owner; leave it running',
  },
  restoreDelta: {
    flags: '--delta',
    type: bool,
    description: 'restore over an existing, stopped data directory of the same system: write only files that differ, remove files the backup lacks (every tar byte is still downloaded)',
  },
  restoreDryRun: { flags: '--dry-run', type: bool, description: 'print the plan (backup, WAL range, target, recoverable window, estimate) and change nothing' },
  restoreJobs: { flags: '--jobs <n>', type: int(1), description: 'archives downloaded at once (default: data.jobs of the source store, else 4)' },
  finishRecovery: { flags: '--finish-recovery', type: bool, hidden: true, description: 'internal: run by recovery_end_command when PostgreSQL ends the recovery' },
  archiveEnd: { flags: '--archive-end <segment>', type: str, hidden: true, description: 'internal, with --finish-recovery: fail unless replay reached this segment' },
  archiveAfter: {
    flags: '--archive-after <on|off>',
    type: oneOf('on', 'off'),
    hidden: true,
    description: "internal, with --finish-recovery: whether the recovered cluster archives (pgark restore writes it, so recovery_end_command need not read the manifests)",
  },

  drillTarget: {
    flags: '--target <target>',
    type: str,
    default: 'latest',
    description: 'latest (the newest archived WAL), random (a uniform time in the recoverable window), a time, or an LSN',
  },
  drillBackup: { flags: '--backup <id|name>', type: str, description: 'the backup to restore (default: the one recovery selects for the target)' },
  drillChecks: { flags: '--checks <file>', type: str, description: 'YAML list of SQL probes {database, sql, expect} run after promotion' },
  drillKeep: { flags: '--keep', type: bool, description: 'leave the restored server running and its scratch directory in place' },
  drillScratch: { flags: '--scratch <dir>', type: str, description: 'parent of the scratch directory (default $TMPDIR)' },
  drillHistory: { flags: '--history', type: bool, description: "list the past drills stored in the Cluster's object store" },

  applyStart: { flags: '--start', type: bool, description: 'recovery: start PostgreSQL, wait for the target and promotion, and leave it running' },
  applyDryRun: { flags: '--dry-run', type: bool, description: 'recovery: print the plan and change nothing' },

  policy: { flags: '--policy <Nd|Nw|Nm>', type: str, description: "use this policy instead of the store's (spec.backup.retentionPolicy, or the ObjectStore's spec.retentionPolicy)" },
  retentionDryRun: { flags: '--dry-run', type: bool, description: 'print what would be deleted and why; delete nothing' },

  count: { flags: '-n, --count <n>', type: int(1, 1000), default: '5', description: 'how many run times per ScheduledBackup' },
  from: { flags: '--from <time>', type: str, description: 'list run times after this ISO 8601 time instead of now' },

  listen: { flags: '--listen <host:port>', type: str, default: '127.0.0.1:9187', description: 'HTTP address for /metrics, /healthz, /readyz, /status' },
  retentionInterval: {
    flags: '--retention-interval <duration>',
    type: duration,
    default: '30m',
    description: "apply each Cluster's retentionPolicy this often, besides after every backup",
  },
  refreshInterval: { flags: '--refresh-interval <duration>', type: duration, default: '1m', description: 're-read each backup catalog this often (metrics, readiness)' },
  stateDir: { flags: '--state-dir <dir>', type: str, description: 'where the agent keeps its state (default ~/.pgark/agent)' },
  agent: { flags: '--agent <url>', type: str, default: 'http://127.0.0.1:9187', description: "the agent's address" },
  statusJson: { flags: '--json', type: bool, description: 'the status as JSON' },

  walPgdata: { flags: '--pgdata <dir>', type: str, description: 'data directory (default: the parent of pg_wal in %p)' },
  archiveNoDaemon: {
    flags: '--no-daemon',
    env: 'PGARK_WAL_NO_DAEMON',
    type: bool,
    readBy: 'wal-archive, wal-restore, bin/pgark',
    description: 'archive in this process instead of through the resident WAL daemon',
  },
  restoreNoDaemon: { flags: '--no-daemon', env: 'PGARK_WAL_NO_DAEMON', type: bool, description: 'fetch in this process, without prefetching' },
  restoreSource: {
    flags: '--source <name>',
    type: str,
    description: 'read from the store of externalClusters[name] (its barmanObjectStore or plugin section; recovery), serverName defaulting to name',
  },
  listSource: { flags: '--source <name>', type: str, description: "list the store of externalClusters[name] (barmanObjectStore or plugin section) instead of the Cluster's own" },

  provider: { flags: '--provider <name>', env: 'LOGICAL_BACKUP_PROVIDER', type: str, description: 's3 | az (azure) (default $LOGICAL_BACKUP_PROVIDER or s3)' },
  destination: { flags: '--destination <url>', type: str, description: 'a local file:// directory instead of S3/Azure' },
  bucket: { flags: '--bucket <name>', env: 'LOGICAL_BACKUP_S3_BUCKET', type: str, description: 'S3 bucket (default $LOGICAL_BACKUP_S3_BUCKET)' },
  prefix: {
    flags: '--prefix <path>',
    env: 'LOGICAL_BACKUP_S3_BUCKET_PREFIX',
    type: str,
    description: 'key prefix (default $LOGICAL_BACKUP_S3_BUCKET_PREFIX or "spilo")',
  },
  endpoint: { flags: '--endpoint <url>', env: 'LOGICAL_BACKUP_S3_ENDPOINT', type: str, description: 'S3-compatible endpoint (default $LOGICAL_BACKUP_S3_ENDPOINT)' },
  region: { flags: '--region <region>', env: 'LOGICAL_BACKUP_S3_REGION', type: str, description: 'S3 region (default $LOGICAL_BACKUP_S3_REGION or $AWS_REGION)' },
  sse: { flags: '--sse <mode>', env: 'LOGICAL_BACKUP_S3_SSE', type: str, description: 'S3 server-side encryption: AES256 | aws:kms (default $LOGICAL_BACKUP_S3_SSE)' },
  ageRecipients: {
    flags: '--age-recipients <file>',
    env: 'LOGICAL_BACKUP_AGE_RECIPIENTS_FILE',
    type: str,
    description: 'encrypt the dumps with age for the public keys in this file (age1... lines, as `age -R` reads); keys get ".age"',
  },
  azureAccount: {
    flags: '--azure-account <name>',
    env: 'LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME',
    type: str,
    description: 'Azure storage account (default $LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME)',
  },
  azureContainer: {
    flags: '--azure-container <name>',
    env: 'LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER',
    type: str,
    description: 'Azure container (default $LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER)',
  },
  azureEndpoint: {
    flags: '--azure-endpoint <url>',
    env: 'LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT',
    type: str,
    description: 'blob service URL, e.g. Azurite (default $LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT)',
  },
  scope: { flags: '--scope <name>', env: 'SCOPE', type: str, description: 'cluster name, first folder of the dump keys (default $SCOPE)' },
  database: { flags: '--database <name>', type: str, description: 'dump only this database (default: globals + every non-template database)' },
  format: {
    flags: '--format <format>',
    type: oneOf('plain', 'custom'),
    default: 'plain',
    description: 'plain (SQL, restores with psql) | custom (pg_dump -Fc, restores in parallel)',
  },
  dumpCompression: { flags: '--compression <codec>', type: oneOf('gzip', 'zstd', 'none'), default: 'gzip', description: 'gzip | zstd | none, for plain dumps' },
  dumpRetention: {
    flags: '--retention <age>',
    env: 'LOGICAL_BACKUP_S3_RETENTION_TIME',
    type: str,
    description: 'delete runs older than this, e.g. "7 days" (default $LOGICAL_BACKUP_S3_RETENTION_TIME)',
  },
  noOwner: { flags: '--no-owner', type: bool, description: 'leave ownership out of the dumps (pg_dump --no-owner)' },

  migrateOutput: { flags: '-o, --output <dir>', type: str, description: 'write the migrated manifests to DIR (same file names) instead of stdout' },
  migrateFrom: {
    flags: '--from <form>',
    type: oneOf('in-tree', 'barman-cloud-plugin'),
    default: 'in-tree',
    description: 'in-tree (spec.backup.barmanObjectStore) or barman-cloud-plugin (barman-cloud.cloudnative-pg.io references)',
  },
  migrateName: { flags: '--name <plugin>', type: str, default: 'pgark.io', description: 'the plugin name written into the manifests' },
  pluginRole: {
    flags: '--role <role>',
    type: str,
    description: 'instance (WAL, Backup, Metrics in the PostgreSQL pod), restore (RestoreJobHooks, WAL in the recovery Job) or operator (validation, sidecar injection, RBAC; TCP with mutual TLS)',
  },
  pluginName: {
    flags: '--name <name>',
    type: str,
    default: 'pgark.io',
    description: "the plugin's name in Cluster spec.plugins[].name and its socket's file name (barman-cloud.cloudnative-pg.io to stand in for plugin-barman-cloud)",
  },
  pluginListen: {
    flags: '--listen <address>',
    type: str,
    default: ':9090',
    description: 'operator role: TCP HOST:PORT or :PORT for gRPC with mutual TLS (CNPG reaches it through a Service)',
  },
  serverCert: { flags: '--server-cert <file>', type: str, description: "operator role: the server's TLS certificate (PEM; tls.crt of `pgark plugin certs`' server Secret)" },
  serverKey: { flags: '--server-key <file>', type: str, description: "operator role: the server certificate's private key (PEM)" },
  clientCa: { flags: '--client-ca <file>', type: str, description: 'operator role: CA that client certificates must be signed by (a client without one is refused)' },
  sidecarImage: {
    env: 'PGARK_SIDECAR_IMAGE',
    type: str,
    readBy: 'plugin serve --role operator',
    description: 'the image of the pgark sidecar the operator plugin injects into PostgreSQL pods and recovery jobs',
  },
  certsNamespace: { flags: '--namespace <ns>', type: str, description: 'namespace of the plugin Service and of the Secrets written' },
  certsService: { flags: '--service <name>', type: str, default: 'pgark', description: "the plugin's Service name: the server certificate is valid for its DNS names" },
  certsOut: { flags: '-o, --output-dir <dir>', type: str, description: 'write ca.crt, server.crt, server.key, client.crt, client.key and the two Secret manifests (secrets.yaml) there' },
  certsApply: { flags: '--apply', type: bool, description: 'create the two Secrets through the Kubernetes API instead of writing files' },
  socketDir: {
    flags: '--socket-dir <dir>',
    env: 'PLUGIN_SOCKET_DIR',
    type: str,
    description: "directory of the plugin's Unix socket (default $PLUGIN_SOCKET_DIR, else /plugins, as CNPG)",
  },
  memoryBudget: {
    env: 'PGARK_MEMORY_BUDGET',
    type: str,
    readBy: 'plugin serve --role instance, restore; backup; apply; barman-cloud-backup; agent (its backups)',
    description: "the process's memory budget as a Kubernetes quantity (128Mi); default: two thirds of the container's cgroup limit, else none for the sidecar and 160Mi for a backup. WAL parallelism, backup part sizes and garbage collection follow it (docs/cnpg-plugin.md, Memory; docs/backups.md, Memory)",
  },
  compressLevel: {
    env: 'PGARK_COMPRESS_LEVEL',
    type: int(0),
    readBy: 'backup, plugin serve --role instance',
    description: "compression level of base-backup tars: gzip 0-9 (default 3), zstd 1-22 (default 3), xz 0-9, bzip2 1-9 (their programs' defaults); ignored by snappy and lz4 (docs/backups.md, Compression level)",
  },
  backupPartMin: {
    env: 'PGARK_BACKUP_PART_MIN',
    type: int(1),
    hidden: true,
    readBy: 'backup, plugin serve --role instance',
    description: 'test-only: the size in bytes each extra data_000N.tar part of a local backup must reach (default 268435456, 256 MiB)',
  },
  restoreRangeBytes: {
    env: 'PGARK_RESTORE_RANGE_BYTES',
    type: int(1),
    hidden: true,
    readBy: 'restore, apply, drill, barman-cloud-restore, plugin serve (restore jobs)',
    description: 'test-only: the size in bytes of the ranges a restore reads the rest of an object in over its spare connections, once one connection is what it waits for (default 4194304, 4 MiB)',
  },
  // Set in every CNPG instance pod (the operator plugin injects the first two into its sidecar).
  pluginNamespace: { env: 'NAMESPACE', type: str, readBy: 'plugin serve in a cluster', description: "the pod's namespace: where its Cluster and ObjectStores are read" },
  pluginClusterName: { env: 'CLUSTER_NAME', type: str, readBy: 'plugin serve in a cluster', description: 'the Cluster this pod belongs to (retention; the readiness check reads its store)' },
  podName: { env: 'POD_NAME', type: str, readBy: 'plugin serve', description: "this pod's name: only the Cluster's status.currentPrimary applies retention; on a replica WAL.Restore may answer OUT_OF_RANGE" },

  logLevel: {
    env: 'PGARK_LOG_LEVEL',
    type: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    default: 'info',
    readBy: 'every command, the agent and the WAL daemon',
    description: 'level of the log lines on stderr (JSON lines, or short lines on a terminal)',
  },
  debug: { env: 'PGARK_DEBUG', type: bool, default: '0', readBy: 'every command', description: '1: print the stack trace of an error after its message' },
  storageMaxAttempts: {
    env: 'PGARK_STORAGE_MAX_ATTEMPTS',
    type: int(1, 100),
    default: '6',
    readBy: 'every command that reads or writes an object store',
    description: 'tries of one storage request, the first included, before its transient failure is reported',
  },
  claimHeartbeatSeconds: {
    env: 'PGARK_CLAIM_HEARTBEAT_SECONDS',
    type: int(1, 3600),
    default: '10',
    readBy: 'backup, apply, agent (the backups it runs)',
    description: 'how often a running base backup refreshes its ID claim; a claim not refreshed for 6 periods is stale, and its backup deletable',
  },
  walTimeoutSeconds: {
    env: 'PGARK_WAL_TIMEOUT_SECONDS',
    type: int(1),
    default: '600',
    readBy: 'wal-archive, wal-restore',
    description: 'how long the WAL client waits for the WAL daemon to answer one request',
  },
  walDaemonIdleSeconds: {
    env: 'PGARK_WAL_DAEMON_IDLE_SECONDS',
    type: int(1),
    default: '60',
    readBy: 'the WAL daemon (started by wal-archive, wal-restore)',
    description: 'the WAL daemon exits after this many seconds without a request',
  },
  walRestoreQueueMib: {
    env: 'PGARK_WAL_RESTORE_QUEUE_MIB',
    type: int(1),
    default: '256',
    readBy: 'the WAL daemon (restore side; started by restore --start, wal-restore)',
    description: 'how much WAL (MiB, whole segments) the WAL daemon keeps prefetched ahead of replay in its restore spool, on disk beside pg_wal; wal.maxParallel bounds only the transfers at once',
  },
  walRestoreSpool: {
    env: 'PGARK_WAL_RESTORE_SPOOL',
    type: str,
    readBy: 'bin/pgark',
    description: "the restore spool of this restore_command's configuration; `pgark restore` writes it so that bin/pgark hands over prefetched segments without starting Node",
  },
  walRuntimeDir: {
    env: 'PGARK_WAL_RUNTIME_DIR',
    type: str,
    readBy: 'wal-archive, wal-restore, the WAL daemon, bin/pgark',
    description: "the WAL daemon's private directory (default $PGDATA/pgark-wal): socket, key, PID file, log, archive and restore spools",
  },
  node: {
    env: 'PGARK_NODE',
    type: str,
    default: 'node',
    readBy: 'bin/pgark (the sh launcher)',
    description: 'the node binary that runs pgark; the restore_command and recovery_end_command pgark writes set it',
  },
  pgBindir: {
    env: 'PGARK_PG_BINDIR',
    type: str,
    readBy: 'restore, apply',
    description: 'PostgreSQL server binaries to use before /usr/lib/postgresql/N/bin and the embedded pgN packages',
  },
  verifyBackup: { flags: '--backup <backup>', type: str, description: 'the backups to verify: an id, a name, latest (default), oldest or all' },
  verifyWal: { flags: '--wal', type: bool, description: "also verify the WAL chain from each chosen backup's begin_wal to the newest segment" },
  verifySinceLast: {
    flags: '--since-last',
    type: bool,
    description: 'verify only the backups and WAL newer than the last fully successful verify run recorded in the store',
  },
  verifyJobs: { flags: '--jobs <n>', type: int(1), description: 'objects read at once (default: data.jobs of the store, else 4)' },
  timelineHtml: { flags: '--html <file>', type: str, description: 'write the timeline as a self-contained HTML page (inline SVG, nothing fetched)' },
  timelineSvg: { flags: '--svg <file>', type: str, description: 'write the timeline as a plain SVG' },
  timelineSince: { flags: '--since <duration>', type: str, description: 'show only the last Nh, Nd or Nw (default: everything in the store)' },
  barmanWalParallel: {
    env: 'PGARK_BARMAN_WAL_PARALLEL',
    type: int(1, 64),
    default: '4',
    readBy: 'barman-cloud-wal-archive, barman-cloud-wal-restore (the drop-ins) and their WAL daemon',
    description: "WAL files the drop-ins' daemon uploads (looking ahead over archive_status) or prefetches at once; CloudNativePG does not pass wal.maxParallel to barman's commands",
  },
  barmanInstallForce: { flags: '--force', type: bool, description: 'replace files in DIR that are not pgark drop-ins' },
  pgOsUser: {
    env: 'PGARK_PG_OS_USER',
    type: str,
    default: 'postgres',
    readBy: 'restore, apply (when run as root)',
    description: 'the OS user that owns a restored data directory and runs PostgreSQL when pgark runs as root',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

const CONFIG = ['file', 'secretsDir', 'json'] as const;
const PG = ['pghost', 'pgport', 'pguser', 'pgpassword', 'pgdatabase', 'pgdata'] as const;
const LOCATION = ['provider', 'destination', 'bucket', 'prefix', 'endpoint', 'region', 'sse', 'azureAccount', 'azureContainer', 'azureEndpoint', 'scope'] as const;

/** The options each command takes, in the order --help lists them. */
export const COMMAND_OPTIONS = {
  check: ['checkCluster', ...CONFIG, ...PG],
  'wal-archive': ['cluster', 'walPgdata', 'archiveNoDaemon', 'file', 'secretsDir'],
  'wal-restore': ['cluster', 'restoreSource', 'walPgdata', 'restoreNoDaemon', 'file', 'secretsDir'],
  'wal-list': ['cluster', 'listSource', ...CONFIG],
  backup: ['cluster', 'backupName', 'immediateCheckpoint', 'compression', 'jobs', 'method', 'backupTarget', 'standbyHost', 'standbyPort', 'walTimeout', 'backupType', 'noProgress', ...CONFIG, ...PG],
  'backup delete': ['cascade'],
  restore: ['restoreCluster', 'restoreStart', 'restoreDryRun', 'restoreDelta', 'restoreJobs', 'finishRecovery', 'archiveEnd', 'archiveAfter', ...CONFIG, ...PG],
  apply: ['applyStart', 'applyDryRun', 'standbyHost', 'standbyPort', ...CONFIG, ...PG],
  retention: ['cluster', 'policy', 'retentionDryRun', ...CONFIG],
  verify: ['cluster', 'verifyBackup', 'verifyWal', 'verifySinceLast', 'verifyJobs', 'noProgress', ...CONFIG],
  timeline: ['cluster', 'timelineHtml', 'timelineSvg', 'timelineSince', ...CONFIG],
  drill: ['cluster', 'drillTarget', 'drillBackup', 'drillChecks', 'drillKeep', 'drillScratch', 'drillHistory', 'restoreJobs', 'pguser', ...CONFIG],
  'schedule next': ['count', 'from', ...CONFIG],
  agent: ['listen', 'retentionInterval', 'refreshInterval', 'stateDir', ...CONFIG, ...PG],
  status: ['agent', 'statusJson'],
  'logical backup': [...LOCATION, ...PG, 'database', 'format', 'dumpCompression', 'ageRecipients', 'dumpRetention', 'noOwner', 'json'],
  'logical list': [...LOCATION, 'json'],
  migrate: ['file', 'migrateOutput', 'migrateFrom', 'migrateName'],
  'plugin serve': ['pluginRole', 'pluginName', 'socketDir', 'file', 'secretsDir', 'pghost', 'pgport', 'pguser', 'pgdata', 'pluginListen', 'serverCert', 'serverKey', 'clientCa'],
  'plugin certs': ['certsNamespace', 'certsService', 'certsOut', 'certsApply'],
  'plugin probe': ['pluginName', 'socketDir'],
  'barman-cloud install': ['barmanInstallForce'],
} as const satisfies Record<string, readonly OptionName[]>;

export type CommandName = keyof typeof COMMAND_OPTIONS;

export function commandsTaking(name: OptionName): CommandName[] {
  return (Object.keys(COMMAND_OPTIONS) as CommandName[]).filter((c) => (COMMAND_OPTIONS[c] as readonly string[]).includes(name));
}

/** The long flag ('--no-daemon') and, when there is one, the short flag ('-f'). */
export function flagNames(spec: OptionSpec): { long: string; short?: string; takesValue: boolean } {
  const words = (spec.flags ?? '').split(/[ ,]+/);
  return { long: words.find((w) => w.startsWith('--'))!, short: words.find((w) => /^-[^-]$/.test(w)), takesValue: /[<[]/.test(spec.flags ?? '') };
}

/** What a valid value looks like, for messages and docs/options.md. */
export function expected(type: OptionType): string {
  switch (type.kind) {
    case 'int':
      return type.max === undefined ? `a whole number of at least ${type.min}` : `a whole number from ${type.min} to ${type.max}`;
    case 'bool':
      return '1 or 0';
    case 'enum':
      return `one of ${type.values.join(', ')}`;
    case 'duration':
      return 'a duration such as 90s, 30m, 1h';
    default:
      return 'any text';
  }
}

type ValueOf<S extends OptionSpec> = S['type'] extends { kind: 'int' } ? number : S['type'] extends { kind: 'bool' } ? boolean : string;
// A flag's default is commander's business; only a variable without a flag falls back to the table's default.
type Setting<N extends OptionName> = (typeof OPTIONS)[N] extends { flags: string }
  ? ValueOf<(typeof OPTIONS)[N]> | undefined
  : (typeof OPTIONS)[N] extends { default: string }
    ? ValueOf<(typeof OPTIONS)[N]>
    : ValueOf<(typeof OPTIONS)[N]> | undefined;

/**
 * Checks and converts one value against its option's type. `from` names where it came from
 * (`PGARK_WAL_TIMEOUT_SECONDS="abc"`, `--jobs "x"`) in the refusal.
 */
export function parseValue(spec: OptionSpec, text: string, from: string): string | number | boolean {
  const refuse = () => {
    const dflt = spec.default === undefined ? '' : ` (default ${spec.default})`;
    return new UserError(`${from} is not ${expected(spec.type)}`, `${spec.description}${dflt}`);
  };
  const t = spec.type;
  if (t.kind === 'int') {
    const n = /^\s*\d{1,15}\s*$/.test(text) ? Number(text) : NaN;
    if (!(n >= t.min && (t.max === undefined || n <= t.max))) throw refuse();
    return n;
  }
  if (t.kind === 'bool') {
    if (text !== '1' && text !== '0') throw refuse();
    return text === '1';
  }
  if (t.kind === 'enum' && !t.values.includes(text)) throw refuse();
  return text;
}

/** An empty text or 1/0 variable is unset (`PGARK_DEBUG= cmd` switches it off); an empty count or choice is an error. */
function unset(spec: OptionSpec, text: string | undefined): boolean {
  return text === undefined || (text === '' && (spec.type.kind === 'string' || spec.type.kind === 'list' || spec.type.kind === 'bool'));
}

/**
 * The value of a variable-backed setting: the variable when it is set, else the table's default.
 * Read when a command runs, never at module load, so that a test or a parent process can set it
 * for one call.
 */
export function setting<N extends OptionName>(name: N, env: NodeJS.ProcessEnv = process.env): Setting<N> {
  const spec: OptionSpec = OPTIONS[name];
  const text = spec.env === undefined ? undefined : env[spec.env];
  if (!unset(spec, text)) return parseValue(spec, text!, `${spec.env}=${JSON.stringify(text)}`) as Setting<N>;
  return (spec.default === undefined || spec.flags !== undefined ? undefined : parseValue(spec, spec.default, 'default')) as Setting<N>;
}

/** A flag's text checked against its option's type (`--pgport "x" is not ...`); undefined when the flag is absent. */
export function flagValue<N extends OptionName>(name: N, text: string | undefined): Setting<N> {
  const spec: OptionSpec = OPTIONS[name];
  return (text === undefined ? undefined : parseValue(spec, text, `${flagNames(spec).long} ${JSON.stringify(text)}`)) as Setting<N>;
}

/** Each PGARK_* variable once, with the first option it sets. */
export function pgarkVariables(): { env: string; name: OptionName; spec: OptionSpec }[] {
  const seen = new Map<string, { env: string; name: OptionName; spec: OptionSpec }>();
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const spec: OptionSpec = OPTIONS[name];
    if (spec.env?.startsWith('PGARK_') && !seen.has(spec.env)) seen.set(spec.env, { env: spec.env, name, spec });
  }
  return [...seen.values()];
}

/**
 * Refuses (UserError, exit 2) the first PGARK_* variable whose value its type does not allow.
 * Every entry point calls it before doing anything, so a bad value stops the command at once
 * instead of at the first retry or the first daemon request.
 */
export function checkEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  for (const { name } of pgarkVariables()) setting(name, env);
}
