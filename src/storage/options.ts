/**
 * What a driver needs to reach a store, as plain values. The storage layer defines it and never
 * reads a manifest: the config layer resolves barmanObjectStore and its Secrets into a
 * ResolvedObjectStore, which extends this shape, and callers pass that straight to openObjectStore.
 */
export interface S3Credentials {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  region?: string;
  inheritFromIAMRole?: boolean;
}

export interface AzureCredentials {
  connectionString?: string;
  storageAccount?: string;
  storageKey?: string;
  storageSasToken?: string;
  inheritFromAzureAD?: boolean;
  useDefaultAzureCredentials?: boolean;
}

export interface ObjectStoreOptions {
  destinationPath: string;
  endpointURL?: string;
  /** PEM bundle from endpointCA. */
  endpointCA?: string;
  s3?: S3Credentials;
  azure?: AzureCredentials;
}
