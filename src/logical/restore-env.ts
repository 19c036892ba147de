/**
 * The restore tool's environment contract (bin/restore.sh), exactly the variables of the project's
 * README table, plus three optional pgark additions: AZURE_STORAGE_ENDPOINT (Azurite, sovereign clouds),
 * LOGICAL_BACKUP_S3_REGION, and RESTORE_JOBS (pg_restore -j for custom-format dumps).
 *
 * Deliberate readings of the table: STORAGE_PROVIDER also accepts "az" (the backup job's spelling);
 * for Azure the blob path is AZURE_STORAGE_BACKUP_PATH, falling back to BACKUP_FILE_PATH; DB_PASS must be
 * set but may be empty (trust/peer authentication); LOGICAL_BACKUP_S3_ENDPOINT may be left out for AWS S3
 * itself. Either path may be "latest".
 */
import type { StorageLocation } from './location.js';
import type { PgConn } from './pgconn.js';
import { IssueList, envValue, isHttpUrl, parsePort } from './settings.js';
import { azureConnection } from './backup-env.js';
import { withoutCredentials } from '../storage/destination.js';
import type { AgeKeys } from '../codec/age.js';

export type RestoreMode = 'interactive' | 'non-interactive';

export const RESTORE_VARIABLES = {
  RESTORE_MODE: 'mode: interactive (default) or non-interactive',
  STORAGE_PROVIDER: 'storage backend: s3 or azure',
  AWS_ACCESS_KEY_ID: 'AWS S3 access key ID',
  AWS_SECRET_ACCESS_KEY: 'AWS S3 secret access key',
  LOGICAL_BACKUP_S3_BUCKET: 'S3 bucket name',
  BACKUP_FILE_PATH: 'backup file path in the bucket, or "latest"',
  LOGICAL_BACKUP_S3_ENDPOINT: 'S3 service endpoint URL',
  AZURE_STORAGE_ACCOUNT_NAME: 'Azure storage account name',
  AZURE_STORAGE_ACCOUNT_KEY: 'Azure storage access key',
  AZURE_STORAGE_CONTAINER_NAME: 'Azure blob storage container name',
  AZURE_STORAGE_BACKUP_PATH: 'backup blob path in the container, or "latest"',
  DB_NAME: 'database to restore into',
  DB_USER: 'database user',
  DB_PASS: 'database password (may be empty for trust authentication)',
  DB_HOST: 'database host address',
  DB_PORT: 'database port',
  AZURE_STORAGE_ENDPOINT: 'blob service URL (optional; e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite)',
  AZURE_STORAGE_CONNECTION_STRING: 'Azure Storage connection string (optional; instead of AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY)',
  LOGICAL_BACKUP_S3_REGION: 'S3 region (optional; default us-east-1)',
  RESTORE_JOBS: 'parallel jobs for custom-format dumps (optional; default 4)',
  AGE_IDENTITY_FILE: 'age identity file (AGE-SECRET-KEY-1... lines) for dumps ending in .age (optional)',
} as const;

type VarName = keyof typeof RESTORE_VARIABLES;

export interface RestoreRequest {
  location: StorageLocation;
  /** Key from the bucket/container root, or "latest". */
  backupPath: string;
  target: PgConn;
  jobs: number;
}

export function readRestoreMode(env: NodeJS.ProcessEnv, issues: IssueList): RestoreMode {
  const mode = envValue(env, 'RESTORE_MODE') ?? 'interactive';
  if (mode !== 'interactive' && mode !== 'non-interactive') {
    issues.invalid('RESTORE_MODE', RESTORE_VARIABLES.RESTORE_MODE, 'interactive or non-interactive', mode);
    return 'non-interactive';
  }
  return mode;
}

/** The keys of AGE_IDENTITY_FILE, when set (both restore paths read it). */
export async function readAgeIdentity(env: NodeJS.ProcessEnv): Promise<AgeKeys | undefined> {
  const file = envValue(env, 'AGE_IDENTITY_FILE');
  if (file === undefined) return undefined;
  // The configuration layer (zod, yaml) costs a process 12 MiB, the CLI
  // loads this module to describe the variables, and only an encrypted dump needs it.
  const { ageKeysFromFiles } = await import('../config/index.js');
  return ageKeysFromFiles({ identity: file }, 'AGE_IDENTITY_FILE');
}

/** RESTORE_JOBS: default 4; undefined when the text is not 1..999. */
export function parseJobs(text: string | undefined): number | undefined {
  if (text === undefined) return 4;
  return /^\d{1,3}$/.test(text) && Number(text) >= 1 ? Number(text) : undefined;
}

export function normaliseProvider(text: string | undefined): 's3' | 'azure' | undefined {
  const p = text?.toLowerCase();
  return p === 's3' ? 's3' : p === 'azure' || p === 'az' ? 'azure' : undefined;
}

/** Every problem with the restore variables in one pass; the request when there is none. */
export function readRestoreEnv(env: NodeJS.ProcessEnv): { request?: RestoreRequest; issues: IssueList } {
  const issues = new IssueList();
  const need = (name: VarName): string | undefined => {
    const v = envValue(env, name);
    if (v === undefined) issues.missing(name, RESTORE_VARIABLES[name]);
    return v;
  };
  const url = (name: VarName): string | undefined => {
    const v = envValue(env, name);
    if (v !== undefined && !isHttpUrl(v)) issues.invalid(name, RESTORE_VARIABLES[name], 'an http:// or https:// URL', withoutCredentials(v));
    return v;
  };
  readRestoreMode(env, issues);

  let location: StorageLocation | undefined;
  let backupPath: string | undefined;
  const providerText = envValue(env, 'STORAGE_PROVIDER');
  const provider = normaliseProvider(providerText);
  if (providerText === undefined) issues.missing('STORAGE_PROVIDER', RESTORE_VARIABLES.STORAGE_PROVIDER);
  else if (!provider) issues.invalid('STORAGE_PROVIDER', RESTORE_VARIABLES.STORAGE_PROVIDER, 's3 or azure', providerText);
  if (provider === 's3') {
    const accessKeyId = need('AWS_ACCESS_KEY_ID');
    const secretAccessKey = need('AWS_SECRET_ACCESS_KEY');
    const bucket = need('LOGICAL_BACKUP_S3_BUCKET');
    backupPath = need('BACKUP_FILE_PATH');
    const endpoint = url('LOGICAL_BACKUP_S3_ENDPOINT');
    if (accessKeyId && secretAccessKey && bucket) {
      location = { provider: 's3', bucket, prefix: '', endpoint, region: envValue(env, 'LOGICAL_BACKUP_S3_REGION'), accessKeyId, secretAccessKey };
    }
  } else if (provider === 'azure') {
    // The account/key pair wins; without it, the connection string of the Azure CLI and SDKs.
    const connection = envValue(env, 'AZURE_STORAGE_ACCOUNT_KEY') ? undefined : azureConnection(env, issues);
    const account = connection ? (envValue(env, 'AZURE_STORAGE_ACCOUNT_NAME') ?? connection.account) : need('AZURE_STORAGE_ACCOUNT_NAME');
    const key = connection ? undefined : need('AZURE_STORAGE_ACCOUNT_KEY');
    const container = need('AZURE_STORAGE_CONTAINER_NAME');
    backupPath = envValue(env, 'AZURE_STORAGE_BACKUP_PATH') ?? envValue(env, 'BACKUP_FILE_PATH');
    if (!backupPath) issues.missing('AZURE_STORAGE_BACKUP_PATH', `${RESTORE_VARIABLES.AZURE_STORAGE_BACKUP_PATH} (BACKUP_FILE_PATH is also accepted)`);
    const endpoint = url('AZURE_STORAGE_ENDPOINT') ?? connection?.endpoint;
    if (account && (key || connection) && container) location = { provider: 'azure', account, key, connectionString: connection?.text, container, prefix: '', endpoint };
  }

  const database = need('DB_NAME');
  const user = need('DB_USER');
  if (env.DB_PASS === undefined) issues.missing('DB_PASS', RESTORE_VARIABLES.DB_PASS);
  const host = need('DB_HOST');
  const portText = need('DB_PORT');
  const port = portText === undefined ? undefined : parsePort(portText);
  if (portText !== undefined && port === undefined) issues.invalid('DB_PORT', RESTORE_VARIABLES.DB_PORT, 'an integer from 1 to 65535', portText);
  const jobsText = envValue(env, 'RESTORE_JOBS');
  const jobs = parseJobs(jobsText);
  if (jobs === undefined) issues.invalid('RESTORE_JOBS', RESTORE_VARIABLES.RESTORE_JOBS, 'an integer from 1 to 999', jobsText);

  if (issues.issues.length > 0 || !location || !backupPath || !database || !user || !host || !port || !jobs) return { issues };
  return { request: { location, backupPath, target: { host, port, user, password: env.DB_PASS, database }, jobs }, issues };
}
