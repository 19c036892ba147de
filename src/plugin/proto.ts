/**
 * The CNPG-I wire contract as loaded at run time: pgark's own .proto files under proto/cnpgi,
 * read with @grpc/proto-loader. The loader options are fixed here for every service:
 * field names in camelCase (keepCase false: `clusterDefinition`), enums as their names
 * ('TYPE_WAL_SERVICE'), bytes as Buffer, int64 as JavaScript numbers (Unix seconds and
 * requeue_after fit), defaults filled in, and the set member of a oneof named in `type`.
 */
import { join } from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { PACKAGE_ROOT } from '../util/package.js';

export const PROTO_DIR = join(PACKAGE_ROOT, 'proto', 'cnpgi');

/** Every file of the contract pgark defines. */
export const PROTO_FILES = [
  'identity.proto',
  'wal.proto',
  'backup.proto',
  'restore_job.proto',
  'metrics.proto',
  'operator.proto',
  'operator_lifecycle.proto',
  'reconciler.proto',
] as const;

export const LOADER_OPTIONS: Options = { keepCase: false, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: true };

/** Fully qualified names of the services, as they appear in /pkg.Service/Method paths. */
export const SERVICES = {
  identity: 'cnpgi.identity.v1.Identity',
  wal: 'cnpgi.wal.v1.WAL',
  backup: 'cnpgi.backup.v1.Backup',
  restoreJob: 'cnpgi.wal.v1.RestoreJobHooks',
  metrics: 'cnpgi.metrics.v1.Metrics',
  operator: 'cnpgi.operator.v1.Operator',
  operatorLifecycle: 'cnpgi.operator_lifecycle.v1.OperatorLifecycle',
  reconciler: 'cnpgi.reconciler.v1.ReconcilerHooks',
} as const;
export type ServiceRole = keyof typeof SERVICES;

/** Loads a set of .proto files (pgark's by default; tests pass the upstream ones) into grpc-js objects. */
export function loadProtos(dir: string = PROTO_DIR, files: readonly string[] = PROTO_FILES): GrpcObject {
  return loadPackageDefinition(loadSync(files.map((f) => join(dir, f)), { ...LOADER_OPTIONS, includeDirs: [dir] }));
}

let pgarkProtos: GrpcObject | undefined;

/** The client constructor of one service (its `.service` is the ServiceDefinition a server adds). */
export function serviceClient(fullName: string, root: GrpcObject = (pgarkProtos ??= loadProtos())): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`no gRPC service ${fullName} in the loaded .proto files`);
  return node as ServiceClientConstructor;
}

/** The definition of one of pgark's services, for PluginServer.register(). */
export function serviceDefinition(role: ServiceRole): ServiceDefinition {
  return serviceClient(SERVICES[role]).service;
}
