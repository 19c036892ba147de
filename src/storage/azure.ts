/**
 * Azure Blob driver (@azure/storage-blob), for Azure and for the emulator URL form.
 *
 * Limits: a block is at most 4000 MiB, a blob at most 50,000 blocks, a batch at most 256
 * sub-requests (deletes fall back to parallel single deletes where batches are refused). Memory per streaming put: partSize x queueSize (uploadStream's BufferScheduler
 * holds at most queueSize buffers of partSize bytes).
 *
 * Credentials: connection string; account + key; account + SAS token; inheritFromAzureAD
 * (workload identity when AZURE_FEDERATED_TOKEN_FILE is set, else managed identity) or
 * useDefaultAzureCredentials (DefaultAzureCredential). The SDK's retry loop is switched off and
 * every request goes through retry.ts, with keep-alive agents that also carry endpointCA.
 */
import { Readable } from 'node:stream';
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  newPipeline,
  type BlobItem,
  type ContainerClient,
  type RequestPolicyFactory,
  type WebResource,
} from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { AzureCredentials, ObjectStoreOptions } from './options.js';
import { UserError } from '../util/errors.js';
import type { GetOptions, ListEntry, ListOptions, ObjectInfo, ObjectStore, PutOptions, PutResult, StorageLimits } from './types.js';
import { classifyStorageError, errorFacts, readFailure, storageError, StorageError } from './errors.js';
import { assertKey, partSizeFor } from './keys.js';
import { keepAliveAgents, type Agents } from './agents.js';
import { DEFAULT_RETRY, backoff, isTransient, isTransientStatus } from './retry.js';
import { resumableDownload } from './resumable.js';
import { collect } from '../io/collect.js';
import { counted } from '../io/count.js';
import { mergeListing } from './common.js';

const MiB = 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 16 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;
/** Parallel single deletes when the service refuses batches. */
const DELETE_FALLBACK_CONCURRENCY = 16;

export interface AzureLocation {
  serviceUrl: string;
  account: string;
  container: string;
  prefix: string;
  displayUrl: string;
}

type Credential = StorageSharedKeyCredential | AnonymousCredential | TokenCredential;

/**
 * A legacy request-policy factory (the hook @azure/storage-blob still exposes) that applies
 * retry.ts around the rest of the pipeline, so each retry is signed afresh, and routes every
 * request through our keep-alive agents.
 */
function sharedRetryPolicy(agents: Agents): RequestPolicyFactory {
  return {
    create: (next) => ({
      async sendRequest(request: WebResource) {
        request.agent ??= request.url.startsWith('https:') ? agents.https : agents.http;
        for (let attempt = 1; ; attempt++) {
          try {
            const response = await next.sendRequest(request);
            if (!isTransientStatus(response.status) || attempt >= DEFAULT_RETRY.maxAttempts) return response;
            response.readableStreamBody?.resume();
          } catch (e) {
            if (!isTransient(e) || attempt >= DEFAULT_RETRY.maxAttempts || request.abortSignal?.aborted) throw e;
          }
          await backoff(attempt);
        }
      },
    }),
  };
}

async function tokenCredential(azure: AzureCredentials): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  if (azure.useDefaultAzureCredentials) return new identity.DefaultAzureCredential();
  const clientId = process.env.AZURE_CLIENT_ID;
  const managed = new identity.ManagedIdentityCredential(clientId ? { clientId } : {});
  return process.env.AZURE_FEDERATED_TOKEN_FILE ? new identity.ChainedTokenCredential(new identity.WorkloadIdentityCredential(), managed) : managed;
}

/** The service URL (with a SAS query when the credential is a SAS) and the credential to sign with. */
async function endpointAndCredential(options: ObjectStoreOptions, location: AzureLocation, displayUrl: string): Promise<{ url: string; credential: Credential }> {
  const azure = options.azure ?? {};
  if (azure.connectionString) {
    // Let the SDK parse every connection-string form (key, SAS, UseDevelopmentStorage), then rebuild the client on our pipeline.
    let parsed: BlobServiceClient;
    try {
      parsed = BlobServiceClient.fromConnectionString(azure.connectionString.trim());
    } catch {
      throw new UserError(`${displayUrl}: azureCredentials.connectionString is not a valid Azure Storage connection string`);
    }
    return { url: parsed.url, credential: parsed.credential };
  }
  if (azure.inheritFromAzureAD || azure.useDefaultAzureCredentials) return { url: location.serviceUrl, credential: await tokenCredential(azure) };
  if (!azure.storageAccount) {
    throw new UserError(`${displayUrl}: azureCredentials needs connectionString, storageAccount with storageKey or storageSasToken, or inheritFromAzureAD`);
  }
  const account = azure.storageAccount.trim();
  if (account !== location.account) {
    throw new UserError(`${displayUrl}: the storageAccount secret does not match the account "${location.account}" in destinationPath`);
  }
  if (azure.storageKey) return { url: location.serviceUrl, credential: new StorageSharedKeyCredential(account, azure.storageKey.trim()) };
  if (azure.storageSasToken) return { url: `${location.serviceUrl}?${azure.storageSasToken.trim().replace(/^\?/, '')}`, credential: new AnonymousCredential() };
  throw new UserError(`${displayUrl}: azureCredentials.storageAccount needs storageKey or storageSasToken`);
}

export class AzureObjectStore implements ObjectStore {
  readonly provider = 'azure' as const;
  readonly limits: StorageLimits = {
    minPartSize: 1,
    maxPartSize: 4000 * MiB,
    maxParts: 50_000,
    deleteBatchSize: 256,
    conditionalCreate: true,
    metadata: true,
    tags: true,
  };

  /** Set once a batch delete was refused; later deletes go one by one. */
  private batchRefused = false;

  private constructor(
    readonly displayUrl: string,
    private readonly container: ContainerClient,
    private readonly root: string,
    private readonly agents: Agents,
  ) {}

  static async open(options: ObjectStoreOptions, location: AzureLocation): Promise<AzureObjectStore> {
    const { url, credential } = await endpointAndCredential(options, location, location.displayUrl);
    const agents = keepAliveAgents(options.endpointCA);
    const pipeline = newPipeline(credential, { retryOptions: { maxTries: 1 } });
    pipeline.factories.push(sharedRetryPolicy(agents));
    const container = new BlobServiceClient(url, pipeline).getContainerClient(location.container);
    return new AzureObjectStore(location.displayUrl, container, location.prefix, agents);
  }

  private blobName(key: string): string {
    assertKey(key);
    return this.root + key;
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    const blob = this.container.getBlockBlobClient(this.blobName(key));
    const partSize = partSizeFor(opts.partSize ?? DEFAULT_BLOCK_SIZE, this.limits, opts.sizeHint ?? (Buffer.isBuffer(body) ? body.length : undefined), this.limits.maxParts);
    const common = {
      metadata: opts.metadata,
      tags: opts.tags && Object.keys(opts.tags).length ? opts.tags : undefined,
      blobHTTPHeaders: opts.contentType ? { blobContentType: opts.contentType } : undefined,
      conditions: opts.ifAbsent ? { ifNoneMatch: '*' } : undefined,
      abortSignal: opts.signal,
      onProgress: opts.onProgress ? (p: { loadedBytes: number }) => opts.onProgress!(p.loadedBytes) : undefined,
    };
    try {
      if (Buffer.isBuffer(body) && body.length <= partSize) {
        await blob.upload(body, body.length, common);
        return { status: 'created', size: body.length };
      }
      const source = counted(Buffer.isBuffer(body) ? Readable.from([body]) : body);
      await blob.uploadStream(source, partSize, opts.queueSize ?? DEFAULT_QUEUE_SIZE, common);
      return { status: 'created', size: source.bytes };
    } catch (e) {
      const { codes, status } = errorFacts(e);
      if (opts.ifAbsent && (status === 412 || codes.includes('BlobAlreadyExists') || codes.includes('ConditionNotMet'))) {
        return { status: 'exists', size: (await this.head(key))?.size ?? 0 };
      }
      throw storageError('put', key, this.displayUrl, e);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const blob = this.container.getBlobClient(this.blobName(key));
    return resumableDownload(
      async (start, end, signal) => {
        const res = await blob.download(start, end === undefined ? undefined : end - start + 1, { abortSignal: signal, maxRetryRequests: 0 });
        return { body: res.readableStreamBody as Readable, length: res.contentLength ?? 0, etag: res.etag, contentRange: res.contentRange };
      },
      { start: opts.start, end: opts.end, signal: opts.signal, wrapError: (e) => this.readError(key, e) },
    );
  }

  private readError(key: string, e: unknown): Error {
    return readFailure(e, key, this.displayUrl, { missingObject: 'BlobNotFound', missingContainer: 'ContainerNotFound' });
  }

  async getBuffer(key: string): Promise<Buffer> {
    return collect(await this.get(key));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const p = await this.container.getBlobClient(this.blobName(key)).getProperties();
      return { key, size: p.contentLength ?? 0, lastModified: p.lastModified, metadata: p.metadata };
    } catch (e) {
      const { codes, status } = errorFacts(e);
      if (status === 404 && !codes.includes('ContainerNotFound')) return undefined;
      throw storageError('head', key, this.displayUrl, e);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    const options = { prefix: this.root + prefix, abortSignal: opts.signal };
    const pages = opts.delimiter
      ? this.container.listBlobsByHierarchy(opts.delimiter, options).byPage({ maxPageSize: 5000 })
      : this.container.listBlobsFlat(options).byPage({ maxPageSize: 5000 });
    const strip = (name: string) => name.slice(this.root.length);
    const info = (b: BlobItem): ObjectInfo => ({ key: strip(b.name), size: b.properties.contentLength ?? 0, lastModified: b.properties.lastModified });
    // Blob listing has no start-after parameter, only opaque continuation markers.
    const after = (key: string) => opts.startAfter === undefined || key > opts.startAfter;
    try {
      for await (const page of pages) {
        const segment = page.segment as { blobItems: BlobItem[]; blobPrefixes?: { name: string }[] };
        yield* mergeListing(segment.blobItems.map(info).filter((o) => after(o.key)), (segment.blobPrefixes ?? []).map((p) => strip(p.name)).filter(after));
      }
    } catch (e) {
      throw storageError('list', prefix, this.displayUrl, e);
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += this.limits.deleteBatchSize) {
      await this.deleteBatch(keys.slice(i, i + this.limits.deleteBatchSize));
    }
  }

  private async deleteBatch(keys: string[]): Promise<void> {
    if (this.batchRefused) return this.deleteOneByOne(keys);
    const clients = keys.map((k) => this.container.getBlobClient(this.blobName(k)));
    let response;
    try {
      response = await this.container.getBlobBatchClient().deleteBlobs(clients, { deleteSnapshots: 'include' });
    } catch (e) {
      const kind = classifyStorageError(e);
      if (kind !== 'other') throw storageError('delete', keys[0], this.displayUrl, e);
      // Azurite answers 500 to a batch signed with a SAS token; single deletes always work.
      this.batchRefused = true;
      return this.deleteOneByOne(keys);
    }
    const failed = response.subResponses.filter((r) => r.status >= 300 && r.status !== 404);
    if (failed.length) {
      const first = failed[0];
      const path = decodeURIComponent(new URL(first._request.url).pathname);
      const key = keys.find((k) => path.endsWith(`/${this.root}${k}`));
      const kind = first.status === 403 ? 'auth' : 'other';
      throw new StorageError('delete', key, this.displayUrl, kind, `${first.errorCode ?? `HTTP ${first.status}`} (${failed.length} of ${keys.length} keys failed)`);
    }
  }

  private async deleteOneByOne(keys: string[]): Promise<void> {
    const queue = [...keys];
    const worker = async () => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
        try {
          await this.container.getBlobClient(this.blobName(key)).deleteIfExists({ deleteSnapshots: 'include' });
        } catch (e) {
          throw storageError('delete', key, this.displayUrl, e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_FALLBACK_CONCURRENCY, keys.length) }, worker));
  }

  async close(): Promise<void> {
    this.agents.destroy();
  }
}
