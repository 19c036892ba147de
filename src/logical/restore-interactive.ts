/**
 * Interactive restore: prompts for provider, credentials (hidden input), the backup (pick-list of the
 * complete dumps, newest first, or a typed path) and the database, with the environment's values as
 * defaults; shows a summary and asks for confirmation before anything is written.
 */
import { confirm, input, password, select } from '@inquirer/prompts';
import type { ObjectStore } from '../storage/types.js';
import { PgarkError, UserError } from '../util/errors.js';
import { listDumps, restorable } from './catalog.js';
import { formatAge, formatBytes } from '../util/format.js';
import { describeLocation, type StorageLocation } from './location.js';
import type { PgConn } from './pgconn.js';
import { normaliseProvider, parseJobs, readAgeIdentity } from './restore-env.js';
import { inspectTarget, resolveBackup, type ResolvedBackup, type RestoreResult, type TargetState } from './restore.js';
import { openLocation, performRestore, targetWarnings } from './restore-steps.js';
import { envValue, isHttpUrl, parsePort } from './settings.js';

const TYPE_PATH = '\u0000type-a-path';

/** A secret: the environment's value after a yes, else hidden input. The value itself is never shown. */
async function secret(env: NodeJS.ProcessEnv, name: string, message: string, allowEmpty = false): Promise<string> {
  const fromEnv = env[name];
  if (fromEnv !== undefined && (allowEmpty || fromEnv !== '')) {
    if (await confirm({ message: `Use ${name} from the environment for the ${message.toLowerCase()}?`, default: true })) return fromEnv;
  }
  return password({ message, mask: '*', validate: (v) => allowEmpty || v.length > 0 || `${message} is required` });
}

const required = (what: string) => (v: string) => v.trim().length > 0 || `${what} is required`;
const optionalUrl = (v: string) => v.trim() === '' || isHttpUrl(v.trim()) || 'enter an http:// or https:// URL, or leave empty';

async function askLocation(env: NodeJS.ProcessEnv): Promise<StorageLocation> {
  const provider = await select({
    message: 'Storage provider',
    choices: [
      { name: 'S3 or S3-compatible', value: 's3' as const },
      { name: 'Azure Blob Storage', value: 'azure' as const },
    ],
    default: normaliseProvider(envValue(env, 'STORAGE_PROVIDER')),
  });
  if (provider === 's3') {
    const accessKeyId = (await input({ message: 'AWS access key ID', default: envValue(env, 'AWS_ACCESS_KEY_ID'), validate: required('The access key ID') })).trim();
    const secretAccessKey = await secret(env, 'AWS_SECRET_ACCESS_KEY', 'AWS secret access key');
    const bucket = (await input({ message: 'S3 bucket', default: envValue(env, 'LOGICAL_BACKUP_S3_BUCKET'), validate: required('The bucket') })).trim();
    const endpoint = (await input({ message: 'S3 endpoint URL (empty for AWS)', default: envValue(env, 'LOGICAL_BACKUP_S3_ENDPOINT'), validate: optionalUrl })).trim();
    return { provider, bucket, prefix: '', endpoint: endpoint || undefined, region: envValue(env, 'LOGICAL_BACKUP_S3_REGION'), accessKeyId, secretAccessKey };
  }
  const account = (await input({ message: 'Azure storage account name', default: envValue(env, 'AZURE_STORAGE_ACCOUNT_NAME'), validate: required('The account name') })).trim();
  const key = await secret(env, 'AZURE_STORAGE_ACCOUNT_KEY', 'Azure storage account key');
  const container = (await input({ message: 'Azure container', default: envValue(env, 'AZURE_STORAGE_CONTAINER_NAME'), validate: required('The container') })).trim();
  const endpoint = (await input({ message: 'Blob service URL (empty for <account>.blob.core.windows.net)', default: envValue(env, 'AZURE_STORAGE_ENDPOINT'), validate: optionalUrl })).trim();
  return { provider, account, key, container, prefix: '', endpoint: endpoint || undefined };
}

async function askBackup(store: ObjectStore, env: NodeJS.ProcessEnv, provider: 's3' | 'azure'): Promise<ResolvedBackup> {
  const dumps = restorable(await listDumps(store));
  const envPath = (provider === 'azure' ? envValue(env, 'AZURE_STORAGE_BACKUP_PATH') : undefined) ?? envValue(env, 'BACKUP_FILE_PATH');
  const now = Date.now();
  const listed = dumps.find((d) => d.key === envPath) ? envPath : undefined;
  const choice = await select({
    message: dumps.length ? `Backup to restore (${dumps.length} found, newest first)` : 'No dumps found under logical_backups/; type a path',
    choices: [
      ...dumps.map((d) => ({ name: `${d.key}  ${formatBytes(d.size)}  ${formatAge(now - d.takenAt.getTime())} old`, value: d.key })),
      { name: 'Type a path…', value: TYPE_PATH },
    ],
    default: listed,
    pageSize: 12,
  });
  for (;;) {
    const path =
      choice === TYPE_PATH ? (await input({ message: 'Backup path in the bucket/container ("latest" for the newest)', default: envPath, validate: required('The path') })).trim() : choice;
    try {
      return await resolveBackup(store, path, undefined);
    } catch (err) {
      if (choice !== TYPE_PATH || !(err instanceof PgarkError)) throw err;
      process.stderr.write(`${err.message}\n`);
    }
  }
}

async function askTarget(env: NodeJS.ProcessEnv, backup: ResolvedBackup): Promise<{ conn: PgConn; state: TargetState }> {
  const defaultDb = envValue(env, 'DB_NAME') ?? backup.meta?.database;
  for (;;) {
    const host = (await input({ message: 'Database host', default: envValue(env, 'DB_HOST') ?? 'localhost', validate: required('The host') })).trim();
    const portText = await input({ message: 'Database port', default: envValue(env, 'DB_PORT') ?? '5432', validate: (v) => parsePort(v.trim()) !== undefined || 'enter a port from 1 to 65535' });
    const database = (await input({ message: 'Database name to restore into', default: defaultDb, validate: required('The database name') })).trim();
    const user = (await input({ message: 'Database user', default: envValue(env, 'DB_USER') ?? 'postgres', validate: required('The user') })).trim();
    const pass = await secret(env, 'DB_PASS', 'Database password', true);
    const conn: PgConn = { host, port: parsePort(portText.trim())!, user, password: pass, database };
    try {
      return { conn, state: await inspectTarget(conn) };
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      if (!(await confirm({ message: 'Enter the database details again?', default: true }))) throw err;
    }
  }
}

export async function interactiveRestore(env: NodeJS.ProcessEnv): Promise<RestoreResult | undefined> {
  if (!process.stdin.isTTY) {
    throw new UserError('interactive restore needs a terminal', 'set RESTORE_MODE=non-interactive and the variables listed in docs/logical-backups.md');
  }
  const jobs = parseJobs(envValue(env, 'RESTORE_JOBS'));
  if (jobs === undefined) throw new UserError('RESTORE_JOBS must be an integer from 1 to 999 (parallel jobs for custom-format dumps)');
  const location = await askLocation(env);
  const store = await openLocation(location);
  try {
    const backup = await askBackup(store, env, location.provider as 's3' | 'azure');
    const { conn, state } = await askTarget(env, backup);
    const warnings = targetWarnings(conn, state);
    const lines = [
      '',
      'Restore summary',
      `  from:      ${describeLocation(location)}`,
      `  backup:    ${backup.key} (${formatBytes(backup.size)}, ${backup.format === 'custom' ? 'custom format' : 'plain SQL'})`,
      `  checksum:  ${backup.meta ? `SHA-256 ${backup.meta.sha256}` : 'none recorded (cannot verify)'}`,
      `  into:      database "${conn.database}" on ${conn.host}:${conn.port} as "${conn.user}"`,
      ...warnings.map((w) => `  WARNING:   ${w}`),
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (!(await confirm({ message: 'Start the restore?', default: state.objects === 0 }))) {
      process.stdout.write('restore cancelled; nothing was changed\n');
      return undefined;
    }
    return await performRestore(store, backup, conn, state, jobs, await readAgeIdentity(env));
  } finally {
    await store.close();
  }
}
