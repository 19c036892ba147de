/**
 * Where logical dumps live, as the backup job and the restore tool describe it with environment
 * variables, turned into the ResolvedObjectStore the storage layer opens. One shape for both sides so
 * the bucket/container/prefix rules cannot drift apart.
 */
import type { ResolvedObjectStore, Encryption } from '../config/types.js';

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
      key: string;
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
        azure: { storageAccount: loc.account, storageKey: loc.key },
        credentialSource,
        config: { destinationPath },
      };
    }
  }
}

/** Where a location points, with no secret in it. */
export function describeLocation(loc: StorageLocation): string {
  switch (loc.provider) {
    case 'file':
      return loc.url;
    case 's3':
      return `s3://${loc.bucket}/${loc.prefix}${loc.endpoint ? ` (endpoint ${loc.endpoint})` : ''}`;
    case 'azure':
      return `azure://${loc.account}/${loc.container}/${loc.prefix}${loc.endpoint ? ` (endpoint ${loc.endpoint})` : ''}`;
  }
}
