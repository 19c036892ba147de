/**
 * A client playing CloudNativePG's instance manager against a CNPG-I plugin socket, built from
 * the upstream protocol files (test/fixtures/cnpg-i, cnpg-i v0.6.0, Apache-2.0) rather than
 * pgark's own, so a test passes only if pgark speaks the upstream wire contract. Requests are
 * shaped as CNPG sends them: the Cluster as JSON bytes, full WAL paths, the plugin entry's
 * parameters, check_empty_wal_archive and the restore mode.
 */
import { join } from 'node:path';
import { credentials, type ChannelCredentials, type ChannelOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { loadProtos, PROTO_FILES, serviceClient } from '../../src/plugin/proto.js';

export const REFERENCE_PROTO_DIR = join(PACKAGE_ROOT, 'test', 'fixtures', 'cnpg-i');
/** The upstream files of the services pgark defines, plus Postgres (whose package is cnpgi.identity.v1). */
export const REFERENCE_PROTO_FILES = [...PROTO_FILES, 'postgres.proto'];

type Rpc = (request: object, callback: (err: ServiceError | null, response: any) => void) => void;

export interface CnpgClient {
  /** Calls `Service/Method` (e.g. 'cnpgi.wal.v1.WAL', 'Archive'); rejects with the gRPC ServiceError. */
  call(service: string, method: string, request?: object): Promise<any>;
  close(): void;
}

/** The operator role's way in: CNPG dials HOST:PORT behind a Service with mutual TLS instead of a socket. */
export interface TcpTarget {
  address: string;
  credentials: ChannelCredentials;
  options?: ChannelOptions;
}

export function cnpgClient(socketPath: string | TcpTarget): CnpgClient {
  const root = loadProtos(REFERENCE_PROTO_DIR, REFERENCE_PROTO_FILES);
  const clients = new Map<string, Client>();
  const clientFor = (service: string) => {
    let c = clients.get(service);
    if (!c) {
      const Ctor = serviceClient(service, root);
      clients.set(
        service,
        (c =
          typeof socketPath === 'string'
            ? new Ctor(`unix:${socketPath}`, credentials.createInsecure())
            : new Ctor(socketPath.address, socketPath.credentials, socketPath.options)),
      );
    }
    return c;
  };
  return {
    call(service, method, request = {}) {
      const client = clientFor(service) as unknown as Record<string, Rpc>;
      if (typeof client[method] !== 'function') throw new Error(`${service} has no method ${method} in the reference protos`);
      return new Promise((resolve, reject) => client[method].call(client, request, (err, res) => (err ? reject(err) : resolve(res))));
    },
    close() {
      for (const c of clients.values()) c.close();
    },
  };
}

export const IDENTITY = 'cnpgi.identity.v1.Identity';
export const WAL = 'cnpgi.wal.v1.WAL';

/** A Cluster as CNPG serialises it into cluster_definition. */
export function clusterJson(cluster: object): Buffer {
  return Buffer.from(JSON.stringify(cluster));
}

export interface PluginClusterOptions {
  name: string;
  namespace?: string;
  pluginName: string;
  barmanObjectName: string;
  serverName?: string;
  isWALArchiver?: boolean;
  /** Other spec.plugins entries (e.g. a second archiver). */
  otherPlugins?: object[];
  spec?: Record<string, unknown>;
}

/** A Cluster that uses the plugin as CNPG's docs show it (spec.plugins[] with barmanObjectName). */
export function pluginCluster(o: PluginClusterOptions): object {
  const parameters: Record<string, string> = { barmanObjectName: o.barmanObjectName };
  if (o.serverName) parameters.serverName = o.serverName;
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: o.name, ...(o.namespace ? { namespace: o.namespace } : {}) },
    spec: {
      instances: 1,
      plugins: [{ name: o.pluginName, enabled: true, isWALArchiver: o.isWALArchiver ?? true, parameters }, ...(o.otherPlugins ?? [])],
      ...o.spec,
    },
  };
}

/** An ObjectStore (barmancloud.cnpg.io/v1) around a barmanObjectStore configuration. */
export function objectStoreDoc(name: string, configuration: object, extra: Record<string, unknown> = {}): object {
  return { apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name }, spec: { configuration, ...extra } };
}
