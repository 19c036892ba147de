/**
 * Where logical dumps live, as the backup job and the restore tool describe it with environment
 * variables, turned into the ResolvedObjectStore the storage layer opens. One shape for both sides so
 * the bucket/container/prefix rules cannot drift apart.
 */
import type { ResolvedObjectStore, Encryption } from '../config/types.js';
import { safeDisplay } from '../storage/destination.js';
import { isHttpUrl } from './settings.js';

export type StorageLocation =
  | {
      provider: 's3';
      bucket: string;
      /** Key prefix inside the bucket ('' for the bucket root). */
      prefix: string;
      endpoint?: string;
      region?: string;
      /** Server-side encryption requested on every upload (PutOptions.encryption). */
      sse?: Encryption;
      /** Both absent: the AWS default credential chain (environment, profile, IAM role). */
      accessKeyId?: string;
      secretAccessKey?: string;
    }
  | {
      provider: 'azure';
      account: string;
      /** Exactly one of key and connectionString. */
      key?: string;
      connectionString?: string;
      container: string;
      prefix: string;
      /** Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite; default https://ACCOUNT.blob.core.windows.net */
      endpoint?: string;
    }
  | { provider: 'file'; url: string };

function joinPath(base: string, prefix: string): string {
  const clean = prefix.split('/').filter(Boolean).map(encodeURIComponent).join('/');
  return clean ? `${base}/${clean}` : base;
}

export function resolveLocation(loc: StorageLocation, credentialSource: string): ResolvedObjectStore {
  switch (loc.provider) {
    case 'file':
      return { destinationPath: loc.url, serverName: '', credentialSource, config: { destinationPath: loc.url } };
    case 's3': {
      const destinationPath = joinPath(`s3://${loc.bucket}`, loc.prefix);
      const explicit = loc.accessKeyId !== undefined && loc.secretAccessKey !== undefined;
      return {
        destinationPath,
        endpointURL: loc.endpoint,
        serverName: '',
        s3: {
          accessKeyId: loc.accessKeyId,
          secretAccessKey: loc.secretAccessKey,
          region: loc.region,
          inheritFromIAMRole: !explicit,
        },
        credentialSource,
        config: { destinationPath, endpointURL: loc.endpoint },
      };
    }
    case 'azure': {
      const service = (loc.endpoint ?? `https://${loc.account}.blob.core.windows.net`).replace(/\/+$/, '');
      const destinationPath = joinPath(`${service}/${encodeURIComponent(loc.container)}`, loc.prefix);
      return {
        destinationPath,
        serverName: '',
        azure: loc.connectionString ? { connectionString: loc.connectionString } : { storageAccount: loc.account, storageKey: loc.key },
        credentialSource,
        config: { destinationPath },
      };
    }
  }
}

/**
 * Account and blob service URL named by an Azure Storage connection string (the form of the az CLI's
 * and every Azure SDK's AZURE_STORAGE_CONNECTION_STRING), for the destination URL and messages; the
 * storage driver hands the whole string to the SDK. Undefined when it names no blob service.
 */
export function azureConnectionTarget(text: string): { account: string; endpoint: string } | undefined {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  if (fields.get('usedevelopmentstorage')?.toLowerCase() === 'true') {
    return { account: 'devstoreaccount1', endpoint: 'http://127.0.0.1:10000/devstoreaccount1' };
  }
  const named = fields.get('accountname');
  const endpoint =
    fields.get('blobendpoint')?.replace(/\/+$/, '') ??
    (named ? `${fields.get('defaultendpointsprotocol') ?? 'https'}://${named}.blob.${fields.get('endpointsuffix') ?? 'core.windows.net'}` : undefined);
  if (!endpoint || !isHttpUrl(endpoint)) return undefined;
  // A SAS connection string may leave the account out: the emulator URL ends in it, the cloud host starts with it.
  const url = new URL(endpoint);
  const account = named ?? (url.pathname.split('/').filter(Boolean)[0] || url.hostname.split('.')[0]);
  return { account, endpoint };
}

/** Where a location points, with no secret in it. */
export function describeLocation(loc: StorageLocation): string {
  switch (loc.provider) {
    case 'file':
      return loc.url;
    case 's3':
      return `s3://${loc.bucket}/${loc.prefix}${loc.endpoint ? ` (endpoint ${safeDisplay(loc.endpoint)})` : ''}`;
    case 'azure':
      return `azure://${loc.account}/${loc.container}/${loc.prefix}${loc.endpoint ? ` (endpoint ${safeDisplay(loc.endpoint)})` : ''}`;
  }
}
