/**
 * The operator role's gRPC services: Identity (operator capabilities), Operator (cluster
 * validation), OperatorLifecycle (sidecar injection) and ReconcilerHooks (RBAC). Handlers decode
 * the JSON CNPG sends and call the plain functions of this folder; p1's unary() maps failures to
 * gRPC codes.
 */
import type { V1EnvVar, V1ResourceRequirements } from '@kubernetes/client-node';
import { logger } from '../../util/log.js';
import { unary } from '../calls.js';
import { readCluster, type PluginConfig } from '../config.js';
import { pluginMetadata } from '../identity.js';
import { serviceDefinition } from '../proto.js';
import type { PluginService } from '../server.js';
import { obj } from './cluster-refs.js';
import type { OperatorKube } from './kube.js';
import { injectionTarget, lifecyclePatch, type SidecarConfiguration } from './lifecycle-patch.js';
import { reconcileRbac } from './rbac.js';
import { validateCluster } from './validate.js';

/**
 * Not TYPE_INSTANCE_JOB_SIDECAR_INJECTION: with it, the instance manager of every job of the
 * Cluster (initdb, upgrade) would wait for this plugin's socket, and only recovery jobs get one.
 */
export const OPERATOR_CAPABILITIES = ['TYPE_OPERATOR_SERVICE', 'TYPE_LIFECYCLE_SERVICE', 'TYPE_RECONCILER_HOOKS', 'TYPE_INSTANCE_SIDECAR_INJECTION'];

export interface OperatorPluginDeps {
  name: string;
  /** The sidecar image (PGARK_SIDECAR_IMAGE, set by the operator Deployment). */
  image: string;
  kube: OperatorKube;
  /** ObjectStores validated and resolved as the sidecar will (p1's PluginConfig over the Kubernetes API). */
  stores: PluginConfig;
}

function kindOf(definition: Buffer): string | undefined {
  try {
    const kind = obj(JSON.parse(definition.toString('utf8')))?.kind;
    return typeof kind === 'string' ? kind : undefined;
  } catch {
    return undefined;
  }
}

interface LifecycleRequest {
  operationType: { type: string } | null;
  clusterDefinition: Buffer;
  objectDefinition: Buffer;
}

/** The sidecar settings of a store; a store that cannot be read yet leaves the defaults, so pods are still created (the validation webhook reports it). */
async function sidecarConfiguration(deps: OperatorPluginDeps, name: string | undefined, namespace: string | undefined): Promise<SidecarConfiguration | undefined> {
  if (!name) return undefined;
  try {
    const cfg = (await deps.stores.objectStore(name, namespace)).spec.instanceSidecarConfiguration;
    // The schema checked these as Kubernetes objects; a numeric quantity (memory: 1) is valid for Kubernetes too.
    return cfg && { ...cfg, env: cfg.env as V1EnvVar[] | undefined, resources: cfg.resources as V1ResourceRequirements | undefined };
  } catch (err) {
    logger().warn({ objectStore: name, namespace, err: (err as Error).message }, 'sidecar injected with default settings: the ObjectStore could not be read');
    return undefined;
  }
}

export function operatorServices(deps: OperatorPluginDeps): PluginService[] {
  const identity: PluginService = {
    definition: serviceDefinition('identity'),
    handlers: {
      GetPluginMetadata: unary('Identity.GetPluginMetadata', async () => pluginMetadata(deps.name)),
      GetPluginCapabilities: unary('Identity.GetPluginCapabilities', async () => ({ capabilities: OPERATOR_CAPABILITIES.map((type) => ({ service: { type } })) })),
      // Nothing to warm up: every call reads what it needs from the request and the API.
      Probe: unary('Identity.Probe', async () => ({ ready: true })),
    },
  };
  const operator: PluginService = {
    definition: serviceDefinition('operator'),
    handlers: {
      GetCapabilities: unary('Operator.GetCapabilities', async () => ({
        capabilities: ['TYPE_VALIDATE_CLUSTER_CREATE', 'TYPE_VALIDATE_CLUSTER_CHANGE'].map((type) => ({ rpc: { type } })),
      })),
      ValidateClusterCreate: unary('Operator.ValidateClusterCreate', async (req: { definition: Buffer }) => ({
        validationErrors: await validateCluster(readCluster(req.definition), deps.name, deps.stores),
      })),
      // The new spec must stand on its own; nothing pgark keeps depends on the old one.
      ValidateClusterChange: unary('Operator.ValidateClusterChange', async (req: { newCluster: Buffer }) => ({
        validationErrors: await validateCluster(readCluster(req.newCluster), deps.name, deps.stores),
      })),
      // Not advertised: the plugin has no defaults to write into a Cluster.
      MutateCluster: unary('Operator.MutateCluster', async () => ({ jsonPatch: Buffer.alloc(0) })),
    },
  };
  const lifecycle: PluginService = {
    definition: serviceDefinition('operatorLifecycle'),
    handlers: {
      GetCapabilities: unary('OperatorLifecycle.GetCapabilities', async () => ({
        lifecycleCapabilities: [
          // EVALUATE lets CNPG compare a running pod with what the hook would make, so a new sidecar image rolls the pods.
          { group: '', kind: 'Pod', operationTypes: [{ type: 'TYPE_CREATE' }, { type: 'TYPE_EVALUATE' }] },
          { group: 'batch', kind: 'Job', operationTypes: [{ type: 'TYPE_CREATE' }] },
        ],
      })),
      LifecycleHook: unary('OperatorLifecycle.LifecycleHook', async (req: LifecycleRequest) => {
        const cluster = readCluster(req.clusterDefinition);
        const object = JSON.parse(req.objectDefinition.toString('utf8')) as unknown;
        const target = injectionTarget(cluster, object, deps.name);
        if (!target) return { jsonPatch: Buffer.alloc(0) };
        const sidecar = await sidecarConfiguration(deps, target.objectStore, cluster.metadata.namespace);
        const ops = lifecyclePatch(cluster, object, target, { pluginName: deps.name, image: deps.image, sidecar });
        return { jsonPatch: ops.length ? Buffer.from(JSON.stringify(ops)) : Buffer.alloc(0) };
      }),
    },
  };
  const continueResult = { behavior: 'BEHAVIOR_CONTINUE', requeueAfter: 0 };
  const reconciler: PluginService = {
    definition: serviceDefinition('reconciler'),
    handlers: {
      GetCapabilities: unary('ReconcilerHooks.GetCapabilities', async () => ({ reconcilerCapabilities: [{ kind: 'KIND_CLUSTER' }] })),
      Pre: unary('ReconcilerHooks.Pre', async (req: { resourceDefinition: Buffer }) => {
        if (kindOf(req.resourceDefinition) !== 'Cluster') return continueResult;
        const r = await reconcileRbac(deps.kube, readCluster(req.resourceDefinition), deps.name);
        if (r.behavior === 'requeue') {
          logger().info({ reason: r.reason }, 'RBAC not reconciled yet, requeueing');
          return { behavior: 'BEHAVIOR_REQUEUE', requeueAfter: r.requeueAfterSeconds };
        }
        if (r.changed.length) logger().info({ changed: r.changed }, 'RBAC reconciled');
        return continueResult;
      }),
      Post: unary('ReconcilerHooks.Post', async () => continueResult),
    },
  };
  return [identity, operator, lifecycle, reconciler];
}
