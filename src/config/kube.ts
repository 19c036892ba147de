/**
 * The Kubernetes API, used when pgark runs inside a cluster (KUBERNETES_SERVICE_HOST) or a
 * kubeconfig exists (KUBECONFIG or ~/.kube/config): Secrets for credentials, and for the CNPG-I
 * plugin's sidecar the ObjectStore it serves, its Cluster, and the ObjectStore's status. The
 * requests go through the small client of kube-client.ts; this module makes their errors terse.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PgarkError, UserError } from '../util/errors.js';
import { KubeApiError, kubeConnector, kubeResource, type KubeOptions, type KubeResourceType } from './kube-client.js';

export type { KubeOptions } from './kube-client.js';

/** Why the Kubernetes API can be used, or undefined when there is no cluster to ask. */
export function kubernetesAvailability(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KUBERNETES_SERVICE_HOST) return 'in-cluster service account';
  if (env.KUBECONFIG) return `kubeconfig ${env.KUBECONFIG}`;
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  return existsSync(home) ? `kubeconfig ${home}` : undefined;
}

/**
 * The API refused the pod's credentials (401) or its Role does not allow the request (403). A
 * UserError, so the plugin answers FAILED_PRECONDITION (the operator plugin creates the Role
 * asynchronously: a later call may succeed) and the CLI exits 2.
 */
export class KubePermissionError extends UserError {
  constructor(
    message: string,
    readonly httpStatus: 401 | 403,
    hint: string,
  ) {
    super(message, hint);
  }
}

const RBAC_HINT = "the operator plugin's Role grants it (see docs/cnpg-plugin.md, Running in a cluster)";

/** HTTP status of a failed request, when the API answered. */
function httpStatus(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.code : undefined;
}

/**
 * A terse error for a failed request on `what` ("secrets/creds"): the status and its reason word,
 * never the response body. 401/403 become KubePermissionError.
 */
function apiError(err: unknown, verb: 'read' | 'update', what: string, namespace: string): Error {
  const code = httpStatus(err);
  if (code === 401) {
    return new KubePermissionError(`the Kubernetes API rejected the pod's credentials (HTTP 401) to ${verb} ${what} in ${namespace}`, 401, 'check the service-account token mounted in the pod');
  }
  if (code === 403) return new KubePermissionError(`the pod's service account may not ${verb} ${what} in ${namespace}`, 403, RBAC_HINT);
  const ing = verb === 'read' ? 'reading' : 'updating';
  if (err instanceof UserError) return err;
  const reason = err instanceof KubeApiError && err.reason ? ` (${err.reason})` : '';
  return new PgarkError(`Kubernetes API: ${ing} ${what} in ${namespace} failed${code ? ` with HTTP ${code}${reason}` : `: ${(err as Error).message}`}`);
}

export interface KubeSecret {
  /** Key -> decoded bytes. */
  values: Record<string, Buffer>;
  namespace: string;
}

export interface KubeSecretReader {
  /** The secret, undefined when the API answers 404; throws on any other failure (KubePermissionError for 401/403). */
  read(name: string, namespace?: string): Promise<KubeSecret | undefined>;
  /** Namespace used when the manifest has none: the kubeconfig context's, else "default". */
  defaultNamespace(): Promise<string>;
}

const SECRETS: KubeResourceType = { group: '', version: 'v1', plural: 'secrets' };

export function kubeSecretReader(opts: KubeOptions = {}): KubeSecretReader {
  const connect = kubeConnector(opts);
  const secrets = kubeResource(connect, SECRETS);
  return {
    async defaultNamespace() {
      return (await connect()).namespace;
    },
    async read(name, namespace) {
      const ns = namespace ?? (await connect()).namespace;
      let secret: { data?: Record<string, string> } | undefined;
      try {
        secret = (await secrets.get(ns, name)) as typeof secret;
      } catch (err) {
        throw apiError(err, 'read', `secrets/${name}`, ns);
      }
      if (!secret) return undefined;
      const values: Record<string, Buffer> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) values[k] = Buffer.from(v, 'base64');
      return { values, namespace: ns };
    },
  };
}

const OBJECT_STORES: KubeResourceType = { group: 'barmancloud.cnpg.io', version: 'v1', plural: 'objectstores' };
const CLUSTERS: KubeResourceType = { group: 'postgresql.cnpg.io', version: 'v1', plural: 'clusters' };

/** A custom resource as JSON, with the metadata pgark relies on. */
export interface KubeCustomObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  status?: Record<string, unknown>;
  [field: string]: unknown;
}

/** Only what plugin-barman-cloud's sidecar Role grants on ObjectStores: get, and update of the status. */
export interface KubeObjectStores {
  /**
   * The ObjectStore's JSON, undefined when the API answers 404; `namespace` defaults to the
   * service account's. Cached for cacheTtlMs, so a changed spec (rotated credentials) is seen
   * within that time.
   */
  read(name: string, namespace: string | undefined): Promise<unknown | undefined>;
  /**
   * Replaces the ObjectStore's status with `change(current status)` through the status subresource
   * (PUT, the verb the Role grants), read-modify-write: on a 409 conflict it reads again and
   * retries, so concurrent writers (other servers' entries) are merged, not overwritten.
   */
  updateStatus(name: string, namespace: string, change: (status: Record<string, unknown>) => Record<string, unknown>): Promise<void>;
}

export interface KubeObjectStoreOptions extends KubeOptions {
  /** How long a read ObjectStore is reused; default 10 s. */
  cacheTtlMs?: number;
  /** Attempts of a status write that keeps meeting conflicts; default 5 (client-go's DefaultRetry). */
  conflictAttempts?: number;
}

/** Reads of one custom resource type, errors made terse and 401/403 made KubePermissionError. */
function customObjects(connect: ReturnType<typeof kubeConnector>, type: KubeResourceType) {
  const objects = kubeResource(connect, type);
  return {
    async get(name: string, namespace: string): Promise<KubeCustomObject | undefined> {
      try {
        return (await objects.get(namespace, name)) as KubeCustomObject | undefined;
      } catch (err) {
        throw apiError(err, 'read', `${type.plural}/${name}`, namespace);
      }
    },
    /** PUT of the status subresource with the object's resourceVersion; false on a 409 conflict. */
    async replaceStatus(obj: KubeCustomObject, namespace: string): Promise<boolean> {
      try {
        await objects.replace(namespace, obj.metadata.name, obj, 'status');
        return true;
      } catch (err) {
        if (httpStatus(err) === 409) return false;
        throw apiError(err, 'update', `${type.plural}/${obj.metadata.name}/status`, namespace);
      }
    },
  };
}

export function kubeObjectStores(opts: KubeObjectStoreOptions = {}): KubeObjectStores {
  const connect = kubeConnector(opts);
  const objects = customObjects(connect, OBJECT_STORES);
  const ttl = opts.cacheTtlMs ?? 10_000;
  const cache = new Map<string, { at: number; value: KubeCustomObject }>();
  return {
    async read(name, ns) {
      const namespace = ns ?? (await connect()).namespace;
      const key = `${namespace}/${name}`;
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < ttl) return structuredClone(hit.value);
      const value = await objects.get(name, namespace);
      if (value) cache.set(key, { at: Date.now(), value });
      else cache.delete(key);
      return value && structuredClone(value);
    },
    async updateStatus(name, namespace, change) {
      const attempts = opts.conflictAttempts ?? 5;
      for (let attempt = 1; ; attempt++) {
        const current = await objects.get(name, namespace);
        if (!current) throw new UserError(`ObjectStore ${namespace}/${name} not found: its status cannot be written`, 'it was deleted while the plugin was using it');
        current.status = change(structuredClone(current.status ?? {}));
        if (await objects.replaceStatus(current, namespace)) return;
        if (attempt >= attempts) {
          throw new PgarkError(`Kubernetes API: objectstores/${name}/status in ${namespace} kept changing: ${attempts} conflicting writes in a row`);
        }
        await new Promise((r) => setTimeout(r, 10 * attempt));
      }
    },
  };
}

/** The Cluster's JSON (postgresql.cnpg.io/v1), undefined when the API answers 404. Never cached: its status moves (currentPrimary). */
export function kubeClusterReader(opts: KubeOptions = {}): (name: string, namespace: string) => Promise<KubeCustomObject | undefined> {
  const clusters = customObjects(kubeConnector(opts), CLUSTERS);
  return (name, namespace) => clusters.get(name, namespace);
}
