/**
 * Settings of `pgark logical backup` / `logical list`: flags first, then the environment variables of
 * Kubernetes logical-backup jobs (Zalando postgres-operator's names), then defaults.
 *
 * Key prefix default "spilo" and scope + LOGICAL_BACKUP_S3_BUCKET_SCOPE_SUFFIX follow the operator, so
 * dumps land beside the ones its job wrote. LOGICAL_BACKUP_PROVIDER accepts "az" (the operator's spelling)
 * and "azure" (the restore tool's); LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT is a pgark addition for
 * Azurite and sovereign clouds.
 */
import type { Encryption } from '../config/types.js';
import type { DumpCodec, DumpFormat } from './keys.js';
import { azureConnectionTarget, type StorageLocation } from './location.js';
import type { LogicalBackupSettings } from './backup.js';
import type { PgConn } from './pgconn.js';
import { parseRetention, type RetentionPeriod } from './retention.js';
import { IssueList, envValue, isHttpUrl, parsePort } from './settings.js';
import { UserError } from '../util/errors.js';
import { withoutCredentials } from '../storage/destination.js';

export interface LocationFlags {
  provider?: string;
  destination?: string;
  bucket?: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  sse?: string;
  azureAccount?: string;
  azureContainer?: string;
  azureEndpoint?: string;
  scope?: string;
}

export interface BackupFlags extends LocationFlags {
  database?: string;
  format?: string;
  compression?: string;
  ageRecipients?: string;
  retention?: string;
  owner?: boolean;
  pghost?: string;
  pgport?: string;
  pguser?: string;
  pgpassword?: string;
}

export interface LocationSettings {
  location: StorageLocation;
  credentialSource: string;
  scope: string;
}

const SSE_VALUES: Encryption[] = ['AES256', 'aws:kms'];

/** Reads the store location and scope; problems go to `issues`. Undefined when they prevent a result. */
export function readLocation(flags: LocationFlags, env: NodeJS.ProcessEnv, issues: IssueList): LocationSettings | undefined {
  const pick = (flag: string | undefined, name: string): string | undefined => flag?.trim() || envValue(env, name);
  const scopeBase = pick(flags.scope, 'SCOPE');
  if (!scopeBase) issues.missing('SCOPE (--scope)', 'the cluster name, first folder of every dump key');
  else if (scopeBase.includes('/')) issues.invalid('SCOPE (--scope)', 'the cluster name, first folder of every dump key', 'a name without "/"', scopeBase);
  const scope = `${scopeBase ?? ''}${envValue(env, 'LOGICAL_BACKUP_S3_BUCKET_SCOPE_SUFFIX') ?? ''}`;
  const prefix = pick(flags.prefix, 'LOGICAL_BACKUP_S3_BUCKET_PREFIX') ?? 'spilo';

  if (flags.destination) {
    if (!flags.destination.startsWith('file://')) issues.invalid('--destination', 'a local dump directory', 'a file:// URL', flags.destination);
    return scopeBase ? { location: { provider: 'file', url: flags.destination }, credentialSource: 'none (local directory)', scope } : undefined;
  }
  const provider = (pick(flags.provider, 'LOGICAL_BACKUP_PROVIDER') ?? 's3').toLowerCase();
  if (provider === 's3') {
    const bucket = pick(flags.bucket, 'LOGICAL_BACKUP_S3_BUCKET');
    if (!bucket) issues.missing('LOGICAL_BACKUP_S3_BUCKET (--bucket)', 'the S3 bucket that holds the dumps');
    const endpoint = pick(flags.endpoint, 'LOGICAL_BACKUP_S3_ENDPOINT');
    if (endpoint && !isHttpUrl(endpoint)) issues.invalid('LOGICAL_BACKUP_S3_ENDPOINT (--endpoint)', 'S3-compatible endpoint URL', 'http(s)://host[:port]', withoutCredentials(endpoint));
    const sse = pick(flags.sse, 'LOGICAL_BACKUP_S3_SSE');
    if (sse && !SSE_VALUES.includes(sse as Encryption)) issues.invalid('LOGICAL_BACKUP_S3_SSE (--sse)', 'server-side encryption', SSE_VALUES.join(' or '), sse);
    const accessKeyId = envValue(env, 'AWS_ACCESS_KEY_ID');
    const secretAccessKey = envValue(env, 'AWS_SECRET_ACCESS_KEY');
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      issues.missing(accessKeyId ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID', 'S3 credentials come as a pair (or neither, for the AWS default chain / IAM role)');
    }
    if (!bucket) return undefined;
    return {
      location: {
        provider: 's3',
        bucket,
        prefix,
        endpoint,
        region: pick(flags.region, 'LOGICAL_BACKUP_S3_REGION') ?? envValue(env, 'AWS_REGION'),
        sse: sse as Encryption | undefined,
        accessKeyId,
        secretAccessKey,
      },
      credentialSource: accessKeyId ? 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY' : 'AWS default credential chain',
      scope,
    };
  }
  if (provider === 'az' || provider === 'azure') {
    const container = pick(flags.azureContainer, 'LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER');
    const key = envValue(env, 'LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY');
    // pgark's own account/key variables win; the connection string is the Azure CLI/SDK convention.
    const connection = key ? undefined : azureConnection(env, issues);
    const account = pick(flags.azureAccount, 'LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME') ?? connection?.account;
    const endpoint = pick(flags.azureEndpoint, 'LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT') ?? connection?.endpoint;
    if (!account) issues.missing('LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME (--azure-account)', 'the Azure storage account');
    if (!container) issues.missing('LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER (--azure-container)', 'the blob container that holds the dumps');
    if (!key && !connection) issues.missing('LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY', 'the storage account access key (or AZURE_STORAGE_CONNECTION_STRING)');
    if (endpoint && !isHttpUrl(endpoint)) issues.invalid('LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT (--azure-endpoint)', 'blob service URL', 'http(s)://host[:port][/account]', withoutCredentials(endpoint));
    if (!account || !container || !(key || connection)) return undefined;
    return {
      location: { provider: 'azure', account, container, key, connectionString: connection?.text, prefix, endpoint },
      credentialSource: key ? 'LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY' : 'AZURE_STORAGE_CONNECTION_STRING',
      scope,
    };
  }
  issues.invalid(
    'LOGICAL_BACKUP_PROVIDER (--provider)',
    'where the dumps are stored',
    '"s3" or "az" (also "azure"); or --destination file:///dir',
    provider,
    provider === 'gcs' ? 'Google Cloud Storage is not supported by pgark' : undefined,
  );
  return undefined;
}

/** AZURE_STORAGE_CONNECTION_STRING with the account and endpoint it names; its text is never shown. */
export function azureConnection(env: NodeJS.ProcessEnv, issues: IssueList): { text: string; account: string; endpoint: string } | undefined {
  const text = envValue(env, 'AZURE_STORAGE_CONNECTION_STRING');
  if (!text) return undefined;
  const target = azureConnectionTarget(text);
  if (!target) {
    issues.invalid('AZURE_STORAGE_CONNECTION_STRING', 'Azure Storage connection string', 'AccountName=...;AccountKey=... (or SharedAccessSignature=...), with BlobEndpoint= or EndpointSuffix=');
    return undefined;
  }
  return { text, ...target };
}

function readConn(flags: BackupFlags, env: NodeJS.ProcessEnv, issues: IssueList): PgConn | undefined {
  const portText = flags.pgport ?? envValue(env, 'PGPORT') ?? '5432';
  const port = parsePort(portText);
  if (port === undefined) issues.invalid('PGPORT (--pgport)', 'PostgreSQL port', 'an integer from 1 to 65535', portText);
  const user = flags.pguser ?? envValue(env, 'PGUSER');
  if (!user) issues.missing('PGUSER (--pguser)', 'the PostgreSQL user that runs pg_dump');
  if (port === undefined || !user) return undefined;
  return {
    host: flags.pghost ?? envValue(env, 'PGHOST') ?? 'localhost',
    port,
    user,
    password: flags.pgpassword ?? env.PGPASSWORD,
    database: 'postgres',
  };
}

function oneOf<T extends string>(issues: IssueList, name: string, purpose: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) issues.invalid(name, purpose, allowed.join(' | '), value);
  return value as T;
}

export function readBackupSettings(flags: BackupFlags, env: NodeJS.ProcessEnv = process.env): LogicalBackupSettings {
  const issues = new IssueList();
  const where = readLocation(flags, env, issues);
  const conn = readConn(flags, env, issues);
  const format = oneOf<DumpFormat>(issues, '--format', 'dump format', flags.format ?? 'plain', ['plain', 'custom']);
  const codec = oneOf<DumpCodec>(issues, '--compression', 'compression of plain dumps', flags.compression ?? 'gzip', ['gzip', 'zstd', 'none']);
  const retentionText = flags.retention ?? envValue(env, 'LOGICAL_BACKUP_S3_RETENTION_TIME');
  let retention: RetentionPeriod | undefined;
  if (retentionText) {
    try {
      retention = parseRetention(retentionText);
    } catch {
      issues.invalid('LOGICAL_BACKUP_S3_RETENTION_TIME (--retention)', 'how long dumps are kept', 'a number and a unit, e.g. "7 days" or "1 month"', retentionText);
    }
  }
  issues.throwIfAny('logical backup settings are incomplete');
  if (!where || !conn) throw new UserError('logical backup settings are incomplete');
  // PGDATABASE is only where pgark connects to list databases: dumping everything is the job's default.
  const database = flags.database;
  conn.database = database ?? envValue(env, 'PGDATABASE') ?? 'postgres';
  return {
    ...where,
    conn,
    database,
    format,
    codec: format === 'custom' ? 'none' : codec,
    noOwner: flags.owner === false,
    retention,
    ageRecipientsFile: flags.ageRecipients ?? envValue(env, 'LOGICAL_BACKUP_AGE_RECIPIENTS_FILE'),
  };
}
