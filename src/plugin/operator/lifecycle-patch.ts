/**
 * The sidecar injection: given the Cluster and a Pod (or a recovery Job) CNPG is about to create,
 * the RFC 6902 JSON patch that adds pgark as a native sidecar sharing the `plugins` socket
 * directory with PostgreSQL. Pure: the caller reads the ObjectStore and passes its sidecar settings.
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1Container, V1EnvVar, V1ResourceRequirements, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { PluginCluster } from '../config.js';
import { list, obj, pluginReferences, type Obj } from './cluster-refs.js';
import { SIDECAR_ENV } from '../../config/memory.js';

export const SIDECAR_NAME = 'pgark-plugin';
export const PLUGINS_VOLUME = 'plugins';
/** CNPG's default PLUGIN_SOCKET_DIR, where the instance manager looks for plugin sockets. */
export const PLUGINS_PATH = '/plugins';
/** The Job roles whose pod restores a backup (CNPG's full-recovery and snapshot-recovery jobs). */
export const RECOVERY_JOB_ROLES = ['full-recovery', 'snapshot-recovery'];

/**
 * The default limit per role leaves a third of it clear of the sidecar's plan (config/memory.ts
 * sizes everything for two thirds of the cgroup limit): an instance sidecar peaked at 122 MiB
 * archiving WAL and 123-124 MiB during a Backup under a 128Mi budget (VmHWM,
 * docs/measurements/plugin-memory.md), so 192Mi; a restore job's sidecar peaked at 106-132 MiB, and
 * keeps 320Mi. Buffers are fixed-size, so the peak does not grow with the database, unlike
 * barman-cloud's Python children (plugin-barman-cloud #385/#825, where users raised limits to
 * GiBs). The request is what it holds while idle.
 */
export const DEFAULT_SIDECAR_RESOURCES: Readonly<Record<InjectionTarget['role'], V1ResourceRequirements>> = {
  instance: { limits: { memory: '192Mi' }, requests: { memory: '128Mi' } },
  restore: { limits: { memory: '320Mi' }, requests: { memory: '128Mi' } },
};

/** ObjectStore.spec.instanceSidecarConfiguration, the parts the sidecar's container takes. */
export interface SidecarConfiguration {
  env?: V1EnvVar[];
  resources?: V1ResourceRequirements;
  additionalContainerArgs?: string[];
  logLevel?: string;
}

export interface SidecarOptions {
  pluginName: string;
  image: string;
  sidecar?: SidecarConfiguration;
}

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

/** Where a sidecar goes in an object, and which store configures it; undefined when this plugin has no business there. */
export interface InjectionTarget {
  role: 'instance' | 'restore';
  /** JSON path of the PodSpec inside the object. */
  specPath: string[];
  /** The container running PostgreSQL (the instance manager). */
  mainContainer: string;
  /** ObjectStore whose instanceSidecarConfiguration applies. */
  objectStore?: string;
}

export function injectionTarget(cluster: PluginCluster, object: unknown, pluginName: string): InjectionTarget | undefined {
  const o = obj(object);
  const refs = pluginReferences(cluster, pluginName);
  if (o?.kind === 'Pod') {
    // Instances need the sidecar to archive (target) or to follow a replica source's archive.
    const store = refs.target ?? refs.replicaSource;
    return store ? { role: 'instance', specPath: ['spec'], mainContainer: 'postgres', objectStore: store.objectStore } : undefined;
  }
  if (o?.kind === 'Job') {
    const labels = obj(obj(obj(obj(o.spec)?.template)?.metadata)?.labels) ?? {};
    // Matched by suffix, as CNPG builds with a custom API group label their jobs <group>/jobRole.
    const role = Object.entries(labels).find(([k]) => k.endsWith('/jobRole'))?.[1];
    if (typeof role !== 'string' || !RECOVERY_JOB_ROLES.includes(role) || !refs.recovery) return undefined;
    // CNPG names the Job's only container after the job role.
    return { role: 'restore', specPath: ['spec', 'template', 'spec'], mainContainer: role, objectStore: refs.recovery.objectStore };
  }
  return undefined;
}

/** Translates ObjectStore logLevel values (CNPG's words) into PGARK_LOG_LEVEL's. */
const LOG_LEVELS: Record<string, string> = { error: 'error', warning: 'warn', info: 'info', debug: 'debug', trace: 'trace' };

/** The JSON patch for `object`; [] when it needs no change (not ours, or already injected as wanted). */
export function lifecyclePatch(cluster: PluginCluster, object: unknown, target: InjectionTarget, opts: SidecarOptions): JsonPatchOperation[] {
  const spec = target.specPath.reduce<unknown>((v, k) => obj(v)?.[k], object);
  const podSpec = obj(spec);
  if (!podSpec) throw new Error(`the ${String(obj(object)?.kind)} has no ${target.specPath.join('.')}`);
  const containers = list(podSpec.containers) as V1Container[];
  const mainIndex = containers.findIndex((c) => c.name === target.mainContainer);
  if (mainIndex < 0) {
    throw new Error(`the ${String(obj(object)?.kind)} has no container "${target.mainContainer}" to share the plugin socket with`);
  }
  const main = containers[mainIndex];
  const base = '/' + target.specPath.join('/');
  const ops: JsonPatchOperation[] = [];
  // `add` on an object member replaces it, so each operation sets a whole list: applying the patch
  // a second time gives the same object, and CNPG applies plugins' patches one after another.
  const set = (path: string, before: unknown, after: unknown) => {
    if (!isDeepStrictEqual(before, after)) ops.push({ op: 'add', path, value: after });
  };

  const volumes = list(podSpec.volumes) as V1Volume[];
  const wantedVolumes = volumes.some((v) => v.name === PLUGINS_VOLUME) ? volumes : [...volumes, { name: PLUGINS_VOLUME, emptyDir: {} }];
  set(`${base}/volumes`, podSpec.volumes, wantedVolumes);

  const mainMounts = withMount(main.volumeMounts ?? [], { name: PLUGINS_VOLUME, mountPath: PLUGINS_PATH });
  set(`${base}/containers/${mainIndex}/volumeMounts`, main.volumeMounts, mainMounts);

  const sidecar = sidecarContainer(cluster, { ...main, volumeMounts: mainMounts }, target, opts);
  const inits = list(podSpec.initContainers) as V1Container[];
  const at = inits.findIndex((c) => c.name === SIDECAR_NAME);
  const wantedInits = at < 0 ? [...inits, sidecar] : inits.map((c, i) => (i === at ? sidecar : c));
  set(`${base}/initContainers`, podSpec.initContainers, wantedInits);
  return ops;
}

/**
 * Adds a mount unless that path is already mounted. Mounts are keyed by mountPath, not name:
 * CNPG mounts its scratch-data volume twice (/run and /controller), and both must reach the sidecar.
 */
function withMount(mounts: V1VolumeMount[], mount: V1VolumeMount): V1VolumeMount[] {
  return mounts.some((m) => m.mountPath === mount.mountPath) ? mounts : [...mounts, mount];
}

function sidecarContainer(cluster: PluginCluster, main: V1Container, target: InjectionTarget, opts: SidecarOptions): V1Container {
  const cfg = opts.sidecar ?? {};
  const level = cfg.logLevel ? LOG_LEVELS[cfg.logLevel] : undefined;
  // First name wins: the identity of the pod, then the ObjectStore's env, then PostgreSQL's env
  // (proxy settings, TMPDIR on the writable scratch volume, CNPG's own variables).
  const env: V1EnvVar[] = [];
  for (const e of [
    { name: 'NAMESPACE', value: cluster.metadata.namespace ?? 'default' },
    { name: 'CLUSTER_NAME', value: cluster.metadata.name },
    // From the downward API: a recovery Job's pod name is generated, so only the kubelet knows it.
    { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    ...(level ? [{ name: 'PGARK_LOG_LEVEL', value: level }] : []),
    ...(cfg.env ?? []),
    // After the ObjectStore's env, so that its NODE_OPTIONS (or malloc setting) wins; before PostgreSQL's, which is not about this process.
    ...Object.entries(SIDECAR_ENV).map(([name, value]) => ({ name, value })),
    ...(main.env ?? []),
  ]) {
    if (!env.some((have) => have.name === e.name)) env.push(e);
  }
  const pullPolicy = (cluster.spec as Obj).imagePullPolicy;
  const container: V1Container = {
    name: SIDECAR_NAME,
    image: opts.image,
    ...(typeof pullPolicy === 'string' ? { imagePullPolicy: pullPolicy } : {}),
    command: ['pgark'],
    args: ['plugin', 'serve', '--role', target.role, '--name', opts.pluginName, ...(cfg.additionalContainerArgs ?? [])],
    // A native sidecar: started before PostgreSQL, kept running, stopped after it.
    restartPolicy: 'Always',
    env,
    ...(main.envFrom?.length ? { envFrom: main.envFrom } : {}),
    volumeMounts: main.volumeMounts,
    resources: cfg.resources ?? DEFAULT_SIDECAR_RESOURCES[target.role],
    startupProbe: {
      exec: { command: ['pgark', 'plugin', 'probe', '--name', opts.pluginName, '--socket-dir', PLUGINS_PATH] },
      periodSeconds: 1,
      failureThreshold: 30,
      timeoutSeconds: 5,
    },
    // No runAsUser: the pod's (CNPG sets 26, the postgres user) lets the sidecar read PGDATA, and
    // is numeric, which runAsNonRoot needs since the image's USER is a name.
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
      capabilities: { drop: ['ALL'] },
    },
  };
  return container;
}
