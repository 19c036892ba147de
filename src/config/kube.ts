/**
 * The Kubernetes API, used when pgark runs inside a cluster (KUBERNETES_SERVICE_HOST) or a
 * kubeconfig exists (KUBECONFIG or ~/.kube/config): Secrets for credentials, and for the CNPG-I
 * plugin's sidecar the ObjectStore it serves, its Cluster, and the ObjectStore's status.
 * @kubernetes/client-node is heavy, so it is loaded only when the API is actually asked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PgarkError, UserError } from '../util/errors.js';

/** Where the kubelet mounts a pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Why the Kubernetes API can be used, or undefined when there is no cluster to ask. */
export function kubernetesAvailability(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KUBERNETES_SERVICE_HOST) return 'in-cluster service account';
  if (env.KUBECONFIG) return `kubeconfig ${env.KUBECONFIG}`;
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  return existsSync(home) ? `kubeconfig ${home}` : undefined;
}

export interface KubeOptions {
  /** Environment consulted (KUBERNETES_SERVICE_HOST/PORT, KUBECONFIG, HOME); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The service-account directory for in-cluster access; default SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
}

type K8s = typeof import('@kubernetes/client-node');
interface Connection {
  k8s: K8s;
  kc: import('@kubernetes/client-node').KubeConfig;
  /** The kubeconfig context's namespace, or the service account's; else "default". */
  namespace: string;
}

/** One lazily made connection: in-cluster from `env` and the service-account directory, else a kubeconfig as kubectl finds it. */
function connector(opts: KubeOptions): () => Promise<Connection> {
  const env = opts.env ?? process.env;
  let connection: Promise<Connection> | undefined;
  return () =>
    (connection ??= import('@kubernetes/client-node').then((k8s) => {
      const kc = new k8s.KubeConfig();
      if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]);
      else if (env.KUBERNETES_SERVICE_HOST) return inCluster(k8s, kc, env, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
      else kc.loadFromFile(join(env.HOME ?? homedir(), '.kube', 'config'));
      return { k8s, kc, namespace: kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default' };
    }));
}

/**
 * client-node's loadFromCluster() reads process.env and a fixed path; this reads the same things
 * from `env` and `dir`, so a caller (and a test) chooses them. The token is a file the client
 * re-reads every minute, so a rotated projected token is picked up.
 */
function inCluster(k8s: K8s, kc: import('@kubernetes/client-node').KubeConfig, env: NodeJS.ProcessEnv, dir: string): Connection {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  kc.loadFromOptions({
    clusters: [{ name: 'in-cluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    users: [{ name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'service-account' }],
    currentContext: 'in-cluster',
  });
  const nsFile = join(dir, 'namespace');
  return { k8s, kc, namespace: existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : 'default' };
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

/** HTTP status of a client-node failure, when it got an answer. */
function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A terse error for a failed request on `what` ("secrets/creds"), never the response body (the
 * client's message carries it). 401/403 become KubePermissionError.
 */
function apiError(err: unknown, verb: 'read' | 'update', what: string, namespace: string): Error {
  const code = httpStatus(err);
  if (code === 401) {
    return new KubePermissionError(`the Kubernetes API rejected the pod's credentials (HTTP 401) to ${verb} ${what} in ${namespace}`, 401, 'check the service-account token mounted in the pod');
  }
  if (code === 403) return new KubePermissionError(`the pod's service account may not ${verb} ${what} in ${namespace}`, 403, RBAC_HINT);
  const ing = verb === 'read' ? 'reading' : 'updating';
  return new PgarkError(`Kubernetes API: ${ing} ${what} in ${namespace} failed${code ? ` with HTTP ${code}` : `: ${(err as Error).message}`}`);
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

export function kubeSecretReader(opts: KubeOptions = {}): KubeSecretReader {
  const connect = connector(opts);
  return {
    async defaultNamespace() {
      return (await connect()).namespace;
    },
    async read(name, namespace) {
      const c = await connect();
      const ns = namespace ?? c.namespace;
      try {
        const secret = await c.kc.makeApiClient(c.k8s.CoreV1Api).readNamespacedSecret({ name, namespace: ns });
        const values: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(secret.data ?? {})) values[k] = Buffer.from(v, 'base64');
        return { values, namespace: ns };
      } catch (err) {
        if (httpStatus(err) === 404) return undefined;
        throw apiError(err, 'read', `secrets/${name}`, ns);
      }
    },
  };
}

/** A custom resource type pgark reads: group, version and plural as the API path spells them. */
interface CustomResource {
  group: string;
  version: string;
  plural: string;
}

const OBJECT_STORES: CustomResource = { group: 'barmancloud.cnpg.io', version: 'v1', plural: 'objectstores' };
const CLUSTERS: CustomResource = { group: 'postgresql.cnpg.io', version: 'v1', plural: 'clusters' };

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
function customObjects(connect: () => Promise<Connection>, type: CustomResource) {
  const api = async () => {
    const c = await connect();
    return c.kc.makeApiClient(c.k8s.CustomObjectsApi);
  };
  return {
    async get(name: string, namespace: string): Promise<KubeCustomObject | undefined> {
      try {
        return (await (await api()).getNamespacedCustomObject({ ...type, namespace, name })) as KubeCustomObject;
      } catch (err) {
        if (httpStatus(err) === 404) return undefined;
        throw apiError(err, 'read', `${type.plural}/${name}`, namespace);
      }
    },
    /** PUT of the status subresource; false on a 409 conflict. */
    async replaceStatus(obj: KubeCustomObject, namespace: string): Promise<boolean> {
      try {
        await (await api()).replaceNamespacedCustomObjectStatus({ ...type, namespace, name: obj.metadata.name, body: obj });
        return true;
      } catch (err) {
        if (httpStatus(err) === 409) return false;
        throw apiError(err, 'update', `${type.plural}/${obj.metadata.name}/status`, namespace);
      }
    },
  };
}

export function kubeObjectStores(opts: KubeObjectStoreOptions = {}): KubeObjectStores {
  const connect = connector(opts);
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
  const clusters = customObjects(connector(opts), CLUSTERS);
  return (name, namespace) => clusters.get(name, namespace);
}
