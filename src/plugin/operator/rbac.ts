/**
 * The Role and RoleBinding that let a Cluster's pods (its service account) read the ObjectStores
 * the Cluster names and the Secrets those stores reference, and write the stores' status: built
 * from the Cluster and its ObjectStores, and kept in sync by the reconciler hooks.
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1OwnerReference, V1PolicyRule, V1Role, V1RoleBinding } from '@kubernetes/client-node';
import type { PluginCluster } from '../config.js';
import { obj, pluginReferences, referencedStoreNames, type Obj } from './cluster-refs.js';
import { OBJECTSTORE_GROUP, type NamespacedResource, type OperatorKube } from './kube.js';

export const RBAC_LABEL = 'app.kubernetes.io/managed-by';
export const RBAC_MANAGER = 'pgark';

export function rbacName(clusterName: string): string {
  return `${clusterName}-pgark`;
}

/** Every Secret name an ObjectStore's spec.configuration references ({name, key} selectors at any depth). */
export function secretNamesOf(objectStore: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    const o = obj(v);
    if (o && typeof o.name === 'string' && typeof o.key === 'string') out.add(o.name);
    else if (o) Object.values(o).forEach(walk);
  };
  walk(obj(obj(objectStore)?.spec)?.configuration);
  return [...out];
}

function ownedBy(cluster: PluginCluster): { ownerReferences?: V1OwnerReference[] } {
  const { name } = cluster.metadata;
  const uid = (cluster.metadata as Obj).uid;
  // Owned by the Cluster, so Kubernetes deletes them with it; a Cluster without a uid (a test) owns nothing.
  return typeof uid === 'string' && uid ? { ownerReferences: [{ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', name, uid, controller: true, blockOwnerDeletion: true }] } : {};
}

function metadata(cluster: PluginCluster) {
  const { name, namespace = 'default' } = cluster.metadata;
  return { name: rbacName(name), namespace, labels: { [RBAC_LABEL]: RBAC_MANAGER, 'cnpg.io/cluster': name }, ...ownedBy(cluster) };
}

/**
 * Rules listing names only. A rule whose resourceNames would be empty is left out, because an
 * empty list means every object of that resource: a store without Secrets must not open them all.
 */
export function desiredRole(cluster: PluginCluster, objectStores: { name: string; definition: unknown }[]): V1Role {
  const stores = [...new Set(objectStores.map((s) => s.name))].sort();
  const secrets = [...new Set(objectStores.flatMap((s) => secretNamesOf(s.definition)))].sort();
  const rules: V1PolicyRule[] = [];
  if (stores.length > 0) {
    rules.push({ apiGroups: [OBJECTSTORE_GROUP], resources: ['objectstores'], verbs: ['get', 'watch', 'list'], resourceNames: stores });
    rules.push({ apiGroups: [OBJECTSTORE_GROUP], resources: ['objectstores/status'], verbs: ['update'], resourceNames: stores });
  }
  if (secrets.length > 0) rules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'], resourceNames: secrets });
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: metadata(cluster), rules };
}

export function desiredRoleBinding(cluster: PluginCluster): V1RoleBinding {
  const { name, namespace = 'default' } = cluster.metadata;
  // CNPG runs the pods as spec.serviceAccountName when set, else as a service account named after the Cluster.
  const sa = (cluster.spec as Obj).serviceAccountName;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: metadata(cluster),
    subjects: [{ kind: 'ServiceAccount', name: typeof sa === 'string' && sa ? sa : name, namespace }],
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: rbacName(name) },
  };
}

export type ReconcileResult =
  | { behavior: 'continue'; changed: string[] }
  /** An ObjectStore is not there yet: try again later rather than grant less than the pods will need. */
  | { behavior: 'requeue'; reason: string; requeueAfterSeconds: number };

export const REQUEUE_SECONDS = 30;

/** Creates or updates the Cluster's Role and RoleBinding to match its current plugin parameters. */
export async function reconcileRbac(kube: OperatorKube, cluster: PluginCluster, pluginName: string): Promise<ReconcileResult> {
  const refs = pluginReferences(cluster, pluginName);
  const stores: { name: string; definition: unknown }[] = [];
  for (const name of referencedStoreNames(refs)) {
    const definition = await kube.objectStore(refs.namespace, name);
    if (!definition) return { behavior: 'requeue', reason: `ObjectStore "${name}" not found in namespace ${refs.namespace}`, requeueAfterSeconds: REQUEUE_SECONDS };
    stores.push({ name, definition });
  }
  const changed: string[] = [];
  const role = desiredRole(cluster, stores);
  if (await ensure(kube.roles, role, (have) => isDeepStrictEqual(have.rules ?? [], role.rules) && sameMeta(have, role))) changed.push(`Role ${role.metadata!.name}`);
  const binding = desiredRoleBinding(cluster);
  const ns = binding.metadata!.namespace!;
  const current = await kube.roleBindings.read(ns, binding.metadata!.name!);
  // roleRef cannot be changed in place (the API refuses it): replace the binding.
  if (current && !isDeepStrictEqual(pick(current.roleRef), pick(binding.roleRef))) await kube.roleBindings.delete(ns, binding.metadata!.name!);
  const sameBinding = (have: V1RoleBinding) => isDeepStrictEqual((have.subjects ?? []).map(pick), binding.subjects!.map(pick)) && sameMeta(have, binding);
  if (await ensure(kube.roleBindings, binding, sameBinding)) changed.push(`RoleBinding ${binding.metadata!.name}`);
  return { behavior: 'continue', changed };
}

/** Drops fields the API server fills in or leaves empty, so a fresh object compares equal to a read one. */
function pick<T extends object | undefined>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined && v !== ''));
}

function sameMeta(have: { metadata?: { labels?: Record<string, string>; ownerReferences?: V1OwnerReference[] } }, want: typeof have): boolean {
  const labels = want.metadata?.labels ?? {};
  const labelsKept = Object.entries(labels).every(([k, v]) => have.metadata?.labels?.[k] === v);
  const owners = (o: typeof have) => (o.metadata?.ownerReferences ?? []).map((r) => r.uid);
  return labelsKept && isDeepStrictEqual(owners(have), owners(want));
}

/** Creates `want` or replaces the stored object when `same` says it differs; true when it wrote. */
async function ensure<T extends { metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> } }>(
  api: NamespacedResource<T>,
  want: T,
  same: (have: T) => boolean,
): Promise<boolean> {
  const ns = want.metadata!.namespace!;
  const name = want.metadata!.name!;
  const have = await api.read(ns, name);
  if (!have) {
    await api.create(ns, want);
    return true;
  }
  if (same(have)) return false;
  // Keep labels others added; resourceVersion makes a concurrent change fail (409) instead of being overwritten.
  const body = { ...want, metadata: { ...want.metadata, labels: { ...have.metadata?.labels, ...want.metadata?.labels }, resourceVersion: have.metadata?.resourceVersion } };
  await api.replace(ns, name, body);
  return true;
}
