/**
 * The operator plugin's Kubernetes API access: ObjectStores (read), the key names of Secrets
 * (never their values), and the Role and RoleBinding it keeps for each Cluster. It runs in its
 * own Deployment, so the in-cluster service account (or KUBECONFIG) is the only source.
 * @kubernetes/client-node is loaded on first use; `pgark plugin certs` and the tests of pure
 * parts never pay for it.
 */
import type { V1Role, V1RoleBinding } from '@kubernetes/client-node';
import { kubeObjectStores, kubeSecretReader } from '../../config/kube.js';

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

/** The HTTP status of a client-node failure, if it has one. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

async function orMissing<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Names the request in an API failure, keeping the response body (which may echo objects) out of the message. */
async function described<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const code = statusOf(err);
    throw new Error(`Kubernetes API: ${what} failed${code ? ` with HTTP ${code}` : `: ${(err as Error).message}`}`, { cause: err });
  }
}

export function operatorKube(env: NodeJS.ProcessEnv = process.env): OperatorKube {
  type Apis = { rbac: import('@kubernetes/client-node').RbacAuthorizationV1Api };
  let apis: Promise<Apis> | undefined;
  const connect = () =>
    (apis ??= import('@kubernetes/client-node').then((k8s) => {
      const kc = new k8s.KubeConfig();
      if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]);
      else kc.loadFromCluster();
      return { rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api) };
    }));
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
    roles: {
      read: async (namespace, name) => described(`reading roles/${name} in ${namespace}`, async () => orMissing((await connect()).rbac.readNamespacedRole({ namespace, name }))),
      create: async (namespace, body) => described(`creating roles/${body.metadata?.name} in ${namespace}`, async () => (await connect()).rbac.createNamespacedRole({ namespace, body })),
      replace: async (namespace, name, body) => described(`updating roles/${name} in ${namespace}`, async () => (await connect()).rbac.replaceNamespacedRole({ namespace, name, body })),
      delete: async (namespace, name) => described(`deleting roles/${name} in ${namespace}`, async () => void (await orMissing((await connect()).rbac.deleteNamespacedRole({ namespace, name })))),
    },
    roleBindings: {
      read: async (namespace, name) =>
        described(`reading rolebindings/${name} in ${namespace}`, async () => orMissing((await connect()).rbac.readNamespacedRoleBinding({ namespace, name }))),
      create: async (namespace, body) =>
        described(`creating rolebindings/${body.metadata?.name} in ${namespace}`, async () => (await connect()).rbac.createNamespacedRoleBinding({ namespace, body })),
      replace: async (namespace, name, body) =>
        described(`updating rolebindings/${name} in ${namespace}`, async () => (await connect()).rbac.replaceNamespacedRoleBinding({ namespace, name, body })),
      delete: async (namespace, name) =>
        described(`deleting rolebindings/${name} in ${namespace}`, async () => void (await orMissing((await connect()).rbac.deleteNamespacedRoleBinding({ namespace, name })))),
    },
  };
}
