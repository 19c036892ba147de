/**
 * Azurite (Azure Blob emulator, 3.35.0 — the last release that runs on Node 20) on a free
 * loopback port for tests, account devstoreaccount1 with its well-known key, and one container
 * created up front.
 */
import { join } from 'node:path';
import { scratchDir } from './tmp.js';
import { startServerProcess } from './server-process.js';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's published development key (not a secret). */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  port: number;
  account: string;
  accountKey: string;
  /** http://127.0.0.1:PORT/devstoreaccount1 */
  blobEndpoint: string;
  container: string;
  /** Connection string with the account key. */
  connectionString: string;
  /** An account SAS token (no leading '?') valid for a day, with every blob permission. */
  sasToken: string;
  /** Connection string with the SAS token instead of the key. */
  sasConnectionString: string;
  dataDir: string;
  /** Creates another container (idempotent). */
  createContainer(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzurite(opts: { container?: string } = {}): Promise<Azurite> {
  const container = opts.container ?? 'pgark';
  const dir = scratchDir('azurite');
  const dataDir = join(dir.path, 'data');
  const server = await startServerProcess(
    'azurite-blob',
    (port) => ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dataDir, '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'],
    'azurite',
  ).catch((e) => {
    dir.cleanup();
    throw e;
  });
  const blobEndpoint = `http://127.0.0.1:${server.port}/${AZURITE_ACCOUNT}`;
  // Loaded here, not with this module: every test file that imports the store harness would
  // otherwise load the Azure SDK's ~300 files (0.25 CPU s) whether it starts Azurite or not.
  const { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, BlobServiceClient, StorageSharedKeyCredential, generateAccountSASQueryParameters } = await import('@azure/storage-blob');
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const sasToken = generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 24 * 3600_000),
      permissions: AccountSASPermissions.parse('rwdlacupitfx'),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      services: AccountSASServices.parse('b').toString(),
    },
    credential,
  ).toString();
  const service = new BlobServiceClient(blobEndpoint, credential);
  const createContainer = async (name: string) => {
    await service.getContainerClient(name).createIfNotExists();
  };
  try {
    await createContainer(container);
  } catch (e) {
    await server.stop();
    dir.cleanup();
    throw e;
  }
  return {
    port: server.port,
    account: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    blobEndpoint,
    container,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    sasToken,
    sasConnectionString: `BlobEndpoint=${blobEndpoint};SharedAccessSignature=${sasToken}`,
    dataDir,
    createContainer,
    stop: async () => {
      await server.stop();
      dir.cleanup();
    },
  };
}
