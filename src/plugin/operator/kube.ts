/**
 * The operator plugin's Kubernetes API access: ObjectStores (read), the key names of Secrets
 * (never their values), and the Role and RoleBinding it keeps for each Cluster. It runs in its
 * own Deployment, so the in-cluster service account (or KUBECONFIG) is the only source. The
 * requests go through config/kube-client.ts like the sidecar's; client-node is imported for its
 * types only, which cost nothing at run time.
 */
import type { V1Role, V1RoleBinding } from '@kubernetes/client-node';
import { kubeObjectStores, kubeSecretReader } from '../../config/kube.js';
import { KubeApiError, kubeConnector, kubeResource, type KubeConnection } from '../../config/kube-client.js';

export const OBJECTSTORE_GROUP = 'barmancloud.cnpg.io';

export interface NamespacedResource<T> {
  /** The object, or undefined on 404. */
  read(namespace: string, name: string): Promise<T | undefined>;
  create(namespace: string, body: T): Promise<T>;
  replace(namespace: string, name: string, body: T): Promise<T>;
  delete(namespace: string, name: string): Promise<void>;
}

export interface OperatorKube {
  /** The ObjectStore as the API returns it, or undefined on 404. */
  objectStore(namespace: string, name: string): Promise<Record<string, unknown> | undefined>;
  /** The key names of a Secret, or undefined on 404. */
  secretKeys(namespace: string, name: string): Promise<string[] | undefined>;
  roles: NamespacedResource<V1Role>;
  roleBindings: NamespacedResource<V1RoleBinding>;
}

/** Names the request in an API failure, keeping the response body (which may echo objects) out of the message. */
async function described<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const detail = err instanceof KubeApiError ? ` with ${err.message}` : `: ${(err as Error).message}`;
    throw new Error(`Kubernetes API: ${what} failed${detail}`, { cause: err });
  }
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** Roles or RoleBindings through the small client; a missing object is undefined on read and nothing to do on delete. */
function rbacResource<T extends { metadata?: { name?: string } }>(connect: () => Promise<KubeConnection>, plural: 'roles' | 'rolebindings'): NamespacedResource<T> {
  const api = kubeResource(connect, { group: RBAC_GROUP, version: 'v1', plural });
  return {
    read: (namespace, name) => described(`reading ${plural}/${name} in ${namespace}`, async () => (await api.get(namespace, name)) as T | undefined),
    create: (namespace, body) => described(`creating ${plural}/${body.metadata?.name} in ${namespace}`, async () => (await api.create(namespace, body)) as T),
    replace: (namespace, name, body) => described(`updating ${plural}/${name} in ${namespace}`, async () => (await api.replace(namespace, name, body)) as T),
    delete: (namespace, name) =>
      described(`deleting ${plural}/${name} in ${namespace}`, async () => {
        try {
          await api.delete(namespace, name);
        } catch (err) {
          if (!(err instanceof KubeApiError && err.code === 404)) throw err;
        }
      }),
  };
}

export function operatorKube(env: NodeJS.ProcessEnv = process.env): OperatorKube {
  const connect = kubeConnector({ env });
  const secrets = kubeSecretReader({ env });
  // No cache: the operator reads a store when a Cluster is validated or reconciled, and must see it as it is now.
  const stores = kubeObjectStores({ env, cacheTtlMs: 0 });
  return {
    async objectStore(namespace, name) {
      return (await stores.read(name, namespace)) as Record<string, unknown> | undefined;
    },
    async secretKeys(namespace, name) {
      const secret = await secrets.read(name, namespace);
      return secret ? Object.keys(secret.values) : undefined;
    },
    roles: rbacResource<V1Role>(connect, 'roles'),
    roleBindings: rbacResource<V1RoleBinding>(connect, 'rolebindings'),
  };
}
