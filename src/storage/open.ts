/**
 * Opens the object store the options point at. Drivers are imported lazily so
 * that a command using file:// never loads the AWS or Azure SDKs.
 */
import type { ObjectStoreOptions } from './options.js';
import type { ObjectStore } from './types.js';
import { parseDestination } from './destination.js';
import { storageMaxAttempts } from './retry.js';

export async function openObjectStore(options: ObjectStoreOptions): Promise<ObjectStore> {
  // A bad PGARK_STORAGE_MAX_ATTEMPTS is refused here, before any request, not at the first retry.
  storageMaxAttempts();
  const dest = parseDestination(options.destinationPath);
  switch (dest.provider) {
    case 'file': {
      const { FileObjectStore } = await import('./file.js');
      return new FileObjectStore(dest.root, dest.displayUrl);
    }
    case 's3': {
      const { S3ObjectStore } = await import('./s3.js');
      return new S3ObjectStore(options, dest);
    }
    case 'azure': {
      const { AzureObjectStore } = await import('./azure.js');
      return AzureObjectStore.open(options, dest);
    }
  }
}
