/**
 * barman-cloud's way of naming a store, turned into pgark's ObjectStoreOptions: the `<dest>` URL,
 * the server name, `--cloud-provider`, `--endpoint-url`, `-P/--aws-profile`, `--credential` and the
 * environment CloudNativePG sets for barman (barman-cloud-cli-contract.md §1.3, §1.5): AWS_* keys or
 * the AWS default chain, AWS_CA_BUNDLE, AZURE_STORAGE_CONNECTION_STRING > _SAS_TOKEN > _KEY >
 * DefaultAzureCredential, REQUESTS_CA_BUNDLE. Secret values go into the options only; messages
 * name variables, never their values.
 */
import { readFileSync } from 'node:fs';
import { parseDestination, safeDisplay } from '../storage/destination.js';
import type { AzureCredentials, ObjectStoreOptions, S3Credentials } from '../storage/options.js';
import { UserError } from '../util/errors.js';

export type BarmanProvider = 'aws-s3' | 'azure-blob-storage' | 'google-cloud-storage';
export type BarmanAzureCredential = 'azure-cli' | 'managed-identity' | 'default';

/** The store-naming arguments of every barman-cloud command. */
export interface BarmanStoreArgs {
  destinationUrl: string;
  serverName: string;
  /** Default aws-s3, as in barman. */
  cloudProvider?: BarmanProvider;
  endpointUrl?: string;
  awsProfile?: string;
  azureCredential?: BarmanAzureCredential;
}

export interface BarmanStore {
  options: ObjectStoreOptions;
  serverName: string;
  /** The AWS profile the SDK must read (it takes it from AWS_PROFILE only). */
  awsProfile?: string;
  /** Safe to print. */
  description: string;
}

/**
 * Exit status of a store that barman's arguments name but pgark cannot use (a provider or credential
 * kind it lacks, a URL of the wrong form, a missing variable): barman's CLI-error class, which
 * CloudNativePG treats as definitive rather than retrying a job that cannot succeed.
 */
export const BARMAN_CONFIG_EXIT = 3;

/**
 * The variables that decide which store and credentials a barman-cloud command uses. The resident
 * WAL daemon of the drop-ins is keyed by their values (with the argv), so that two stores, or two
 * sets of credentials, never share one daemon or its spool markers. bin/pgark hashes the same list.
 */
export const BARMAN_CREDENTIAL_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ENDPOINT_URL',
  'AWS_CA_BUNDLE',
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_SAS_TOKEN',
  'AZURE_STORAGE_KEY',
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_FEDERATED_TOKEN_FILE',
  'REQUESTS_CA_BUNDLE',
] as const;

function configError(message: string, hint?: string): UserError {
  return new UserError(message, hint, BARMAN_CONFIG_EXIT);
}

const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

function caBundle(variable: 'AWS_CA_BUNDLE' | 'REQUESTS_CA_BUNDLE', env: NodeJS.ProcessEnv): string | undefined {
  const path = text(env[variable]);
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(`${variable} names ${path}, which cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'point it at a PEM bundle (CloudNativePG mounts endpointCA there)');
  }
}

function s3Credentials(args: BarmanStoreArgs, env: NodeJS.ProcessEnv): S3Credentials {
  const region = text(env.AWS_DEFAULT_REGION) ?? text(env.AWS_REGION);
  // A profile, like boto3's Session(profile_name=...), wins over keys in the environment.
  if (args.awsProfile) return { inheritFromIAMRole: true, region };
  const accessKeyId = text(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = text(env.AWS_SECRET_ACCESS_KEY);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw configError(`${accessKeyId ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY'} is set without ${accessKeyId ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID'}`, 'set both, or neither to use the AWS default chain (web identity, container or instance role)');
  }
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, sessionToken: text(env.AWS_SESSION_TOKEN), region };
  // The SDK's default chain: AWS_PROFILE, web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), container, instance metadata.
  return { inheritFromIAMRole: true, region };
}

function azureCredentials(args: BarmanStoreArgs, account: string, cloudHost: boolean, env: NodeJS.ProcessEnv): AzureCredentials {
  switch (args.azureCredential) {
    case 'default':
      return { useDefaultAzureCredentials: true };
    case 'managed-identity':
      return { inheritFromAzureAD: true };
    case 'azure-cli':
      throw configError('--credential azure-cli is not supported by pgark', 'use --credential default: DefaultAzureCredential includes the Azure CLI login');
  }
  const connectionString = text(env.AZURE_STORAGE_CONNECTION_STRING);
  if (connectionString) return { connectionString };
  if (!cloudHost) {
    throw configError(
      `${safeDisplay(args.destinationUrl)} is not an Azure Blob Storage host (ACCOUNT.blob.core.windows.net): an emulator URL needs AZURE_STORAGE_CONNECTION_STRING`,
      'set AZURE_STORAGE_CONNECTION_STRING (CloudNativePG sets it from azureCredentials.connectionString)',
    );
  }
  // barman takes the account from the URL host, never from AZURE_STORAGE_ACCOUNT.
  const sas = text(env.AZURE_STORAGE_SAS_TOKEN);
  if (sas) return { storageAccount: account, storageSasToken: sas };
  const key = text(env.AZURE_STORAGE_KEY);
  if (key) return { storageAccount: account, storageKey: key };
  return { useDefaultAzureCredentials: true };
}

/** The store that barman-cloud's arguments and environment name; throws UserError (exit 3) when pgark cannot use it. */
export function resolveBarmanStore(args: BarmanStoreArgs, env: NodeJS.ProcessEnv = process.env): BarmanStore {
  const provider = args.cloudProvider ?? 'aws-s3';
  const shown = safeDisplay(args.destinationUrl);
  if (provider === 'google-cloud-storage') {
    throw configError('--cloud-provider google-cloud-storage: Google Cloud Storage is not supported by pgark', 'use an S3 or Azure Blob Storage destination, or keep barman-cloud for this cluster');
  }
  if (!args.serverName || args.serverName.includes('/')) {
    throw configError(`server name "${args.serverName}" is not usable as a folder name`, 'pass the serverName CloudNativePG uses (the cluster name by default)');
  }
  let dest;
  try {
    dest = parseDestination(args.destinationUrl);
  } catch (err) {
    throw err instanceof UserError ? configError(err.message, err.hint) : err;
  }
  const description = `${shown} server "${args.serverName}"`;
  // file:// is pgark's own (tests, local archives): no provider, no credentials.
  if (dest.provider === 'file') return { options: { destinationPath: args.destinationUrl }, serverName: args.serverName, description };
  if (provider === 'aws-s3') {
    if (dest.provider !== 's3') throw configError(`${shown} is not an S3 URL (s3://BUCKET/path), as --cloud-provider aws-s3 needs`, 'pass --cloud-provider azure-blob-storage for an Azure URL');
    return {
      options: { destinationPath: args.destinationUrl, endpointURL: text(args.endpointUrl), endpointCA: caBundle('AWS_CA_BUNDLE', env), s3: s3Credentials(args, env) },
      serverName: args.serverName,
      awsProfile: args.awsProfile,
      description,
    };
  }
  if (dest.provider !== 'azure') throw configError(`${shown} is not an Azure Blob Storage URL, as --cloud-provider azure-blob-storage needs`, 'use https://ACCOUNT.blob.core.windows.net/CONTAINER/path');
  const cloudHost = /\.blob\.core\./i.test(new URL(args.destinationUrl).hostname);
  // --endpoint-url is S3's: barman's Azure client takes its endpoint from the URL (CloudNativePG passes it anyway).
  return {
    options: { destinationPath: args.destinationUrl, endpointCA: caBundle('REQUESTS_CA_BUNDLE', env), azure: azureCredentials(args, dest.account, cloudHost, env) },
    serverName: args.serverName,
    description,
  };
}

/**
 * Puts a profile where the AWS SDK reads it (AWS_PROFILE) and takes the static keys out of this
 * process's environment, so the profile alone decides, as with boto3. A drop-in process, and the
 * resident daemon keyed by its argv, serve one store each, so the change is theirs alone.
 */
export function applyAwsProfile(store: BarmanStore, env: NodeJS.ProcessEnv = process.env): void {
  if (!store.awsProfile) return;
  env.AWS_PROFILE = store.awsProfile;
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_SESSION_TOKEN;
}
