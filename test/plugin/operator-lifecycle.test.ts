/**
 * The sidecar injection patch on Pod and Job specs of the shapes CNPG 1.26–1.30 creates
 * (test/fixtures/cnpg-pods): applied with an RFC 6902 applier, the result must still be a valid
 * Pod/Job by the Kubernetes OpenAPI models of @kubernetes/client-node (no kubelet or API server
 * runs here, so the documented shapes are the contract), carry the hardened native sidecar with
 * the shared socket volume, and a second pass must change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import {
  DEFAULT_SIDECAR_RESOURCES,
  SIDECAR_NAME,
  injectionTarget,
  lifecyclePatch,
  type SidecarOptions,
} from '../../src/plugin/operator/lifecycle-patch.js';
import { readCluster } from '../../src/plugin/config.js';
import { applyPatch } from '../harness/json-patch.js';
import { kubeShapeProblems } from '../harness/kube-shapes.js';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(JSON.stringify(parse(readFileSync(`test/fixtures/cnpg-pods/${name}.yaml`, 'utf8'))));
const clusterFixture = (name: string) => readCluster(fixture(name));
const OPTS: SidecarOptions = { pluginName: 'pgark.io', image: 'ghcr.io/example/pgark:1.0.0' };

function podSpecOf(o: Record<string, unknown>): V1PodSpec {
  return o.kind === 'Job' ? (o as { spec: { template: { spec: V1PodSpec } } }).spec.template.spec : (o as unknown as V1Pod).spec!;
}

/** Runs the hook the way CNPG does: patch computed on the object, then applied to it. */
function hook(clusterName: string, object: Record<string, unknown>, opts = OPTS) {
  const cluster = clusterFixture(clusterName);
  const target = injectionTarget(cluster, object, opts.pluginName);
  const ops = target ? lifecyclePatch(cluster, object, target, opts) : [];
  return { target, ops, result: applyPatch(object, ops) };
}

const CASES = [
  { object: 'pod-1.26', cluster: 'cluster-plugin', type: 'V1Pod', role: 'instance', main: 'postgres' },
  { object: 'pod-1.30', cluster: 'cluster-plugin', type: 'V1Pod', role: 'instance', main: 'postgres' },
  { object: 'job-full-recovery', cluster: 'cluster-recovery', type: 'V1Job', role: 'restore', main: 'full-recovery' },
  { object: 'job-snapshot-recovery', cluster: 'cluster-recovery', type: 'V1Job', role: 'restore', main: 'snapshot-recovery' },
];

for (const c of CASES) {
  test(`${c.object}: the patched ${c.type} is valid, has the hardened native sidecar, and a second pass changes nothing`, () => {
    const original = fixture(c.object);
    assert.deepEqual(kubeShapeProblems(original, c.type), [], 'the fixture itself must be a valid object');
    const { ops, result } = hook(c.cluster, original);
    assert.ok(ops.length > 0);
    assert.deepEqual(kubeShapeProblems(result, c.type), []);

    const spec = podSpecOf(result);
    const before = podSpecOf(original);
    const main = spec.containers.find((x) => x.name === c.main)!;
    const sidecars = (spec.initContainers ?? []).filter((x) => x.name === SIDECAR_NAME);
    assert.equal(sidecars.length, 1);
    const sidecar = sidecars[0];
    // Native sidecar, after CNPG's bootstrap-controller (which copies the instance manager first).
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(spec.initContainers![0].name, 'bootstrap-controller');
    assert.equal(sidecar.image, OPTS.image);
    assert.deepEqual(sidecar.args, ['plugin', 'serve', '--role', c.role, '--name', 'pgark.io']);
    assert.deepEqual(sidecar.securityContext, {
      allowPrivilegeEscalation: false,
      privileged: false,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
      capabilities: { drop: ['ALL'] },
    });
    assert.deepEqual(sidecar.resources, DEFAULT_SIDECAR_RESOURCES[c.role as 'instance' | 'restore']);
    // The instance sidecar plans for two thirds of its limit, 128Mi, where its measured peaks fit (docs/cnpg-plugin.md "Memory").
    assert.equal(sidecar.resources?.limits?.memory, c.role === 'instance' ? '192Mi' : '320Mi');
    assert.deepEqual(sidecar.startupProbe?.exec?.command?.slice(0, 3), ['pgark', 'plugin', 'probe']);

    // The shared socket directory: one emptyDir, mounted at /plugins in both containers.
    assert.deepEqual(spec.volumes!.filter((v) => v.name === 'plugins'), [{ name: 'plugins', emptyDir: {} }]);
    for (const ctr of [main, sidecar]) {
      assert.equal(ctr.volumeMounts!.filter((m) => m.mountPath === '/plugins').length, 1, `${ctr.name} mounts /plugins once`);
    }
    // The sidecar sees everything PostgreSQL sees (both scratch-data mounts included), nothing twice.
    assert.deepEqual(sidecar.volumeMounts, main.volumeMounts);
    const paths = sidecar.volumeMounts!.map((m) => m.mountPath);
    assert.equal(new Set(paths).size, paths.length);
    assert.ok(paths.includes('/run') && paths.includes('/controller') && paths.includes('/var/lib/postgresql/data'));

    // Env: the pod's identity, then PostgreSQL's env, each name once.
    const names = sidecar.env!.map((e) => e.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(names.slice(0, 3), ['NAMESPACE', 'CLUSTER_NAME', 'POD_NAME']);
    assert.equal(sidecar.env!.find((e) => e.name === 'POD_NAME')!.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    for (const e of before.containers.find((x) => x.name === c.main)!.env!) assert.ok(names.includes(e.name), e.name);
    assert.equal(sidecar.env!.find((e) => e.name === 'PGDATA')!.value, '/var/lib/postgresql/data/pgdata');

    // Nothing else of the object moved.
    const strip = (s: V1PodSpec) => ({ ...s, volumes: undefined, initContainers: undefined, containers: s.containers.map((x) => ({ ...x, volumeMounts: undefined })) });
    assert.deepEqual(strip(spec), strip(before));

    // Idempotent both ways: the hook on the result asks for nothing, and the same patch applied again changes nothing.
    assert.deepEqual(hook(c.cluster, result).ops, []);
    assert.deepEqual(applyPatch(result, ops), result);
  });
}

test('a pod that already carries an older sidecar is updated in place, not given a second one', () => {
  const pod = fixture('pod-injected');
  const { ops, result } = hook('cluster-plugin', pod);
  // Only the init containers change: the plugins volume and the postgres mount are there already.
  assert.deepEqual(ops.map((o) => o.path), ['/spec/initContainers']);
  const spec = podSpecOf(result);
  assert.equal(spec.initContainers!.filter((x) => x.name === SIDECAR_NAME).length, 1);
  assert.equal(spec.initContainers!.find((x) => x.name === SIDECAR_NAME)!.image, OPTS.image);
  assert.equal(spec.volumes!.filter((v) => v.name === 'plugins').length, 1);
  assert.deepEqual(kubeShapeProblems(result, 'V1Pod'), []);
  assert.deepEqual(hook('cluster-plugin', result).ops, []);
});

test('objects the plugin has no business with get an empty patch', () => {
  // An initdb job, a pod of a cluster using another plugin, a recovery job of a cluster recovering through another plugin.
  assert.equal(hook('cluster-recovery', fixture('job-initdb')).target, undefined);
  assert.equal(hook('cluster-other-plugin', fixture('pod-1.30')).target, undefined);
  assert.equal(hook('cluster-plugin', fixture('job-full-recovery')).target, undefined);
  const disabled = clusterFixture('cluster-plugin');
  disabled.spec.plugins![0].enabled = false;
  assert.equal(injectionTarget(disabled, fixture('pod-1.30'), 'pgark.io'), undefined);
});

test('the ObjectStore sidecar configuration: resources, env, args and log level reach the container', () => {
  const pod = fixture('pod-1.30');
  const opts: SidecarOptions = {
    ...OPTS,
    pluginName: 'barman-cloud.cloudnative-pg.io',
    sidecar: {
      resources: { limits: { memory: '256Mi', cpu: '1' }, requests: { memory: '200Mi' } },
      env: [{ name: 'AWS_REQUEST_CHECKSUM_CALCULATION', value: 'when_required' }, { name: 'TMPDIR', value: '/plugins/tmp' }],
      additionalContainerArgs: ['--verbose'],
      logLevel: 'warning',
    },
  };
  const cluster = clusterFixture('cluster-plugin');
  cluster.spec.plugins![0].name = 'barman-cloud.cloudnative-pg.io';
  const target = injectionTarget(cluster, pod, opts.pluginName)!;
  assert.equal(target.objectStore, 'minio-store');
  const result = applyPatch(pod, lifecyclePatch(cluster, pod, target, opts));
  const sidecar = podSpecOf(result).initContainers!.find((x) => x.name === SIDECAR_NAME) as V1Container;
  assert.deepEqual(sidecar.resources, opts.sidecar!.resources);
  assert.deepEqual(sidecar.args, ['plugin', 'serve', '--role', 'instance', '--name', 'barman-cloud.cloudnative-pg.io', '--verbose']);
  const env = Object.fromEntries(sidecar.env!.map((e) => [e.name, e.value]));
  assert.equal(env.PGARK_LOG_LEVEL, 'warn');
  assert.equal(env.AWS_REQUEST_CHECKSUM_CALCULATION, 'when_required');
  // The ObjectStore's env wins over PostgreSQL's for the same name.
  assert.equal(env.TMPDIR, '/plugins/tmp');
  assert.equal(sidecar.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(sidecar.envFrom, [{ configMapRef: { name: 'pg-extra-env' } }]);
  assert.deepEqual(kubeShapeProblems(result, 'V1Pod'), []);
});

test('the shape checker itself rejects an unknown field and a missing required one', () => {
  const pod = fixture('pod-1.30') as { spec: { containers: Record<string, unknown>[] } };
  pod.spec.containers[0].restartPolcy = 'Always';
  delete (pod.spec.containers[0].volumeMounts as Record<string, unknown>[])[0].mountPath;
  const problems = kubeShapeProblems(pod, 'V1Pod');
  assert.ok(problems.some((p) => p.includes('restartPolcy: not a field of V1Container')), problems.join('\n'));
  assert.ok(problems.some((p) => p.includes('volumeMounts[0].mountPath: required by V1VolumeMount')), problems.join('\n'));
});

test('a pod without the postgres container is refused with a clear error', () => {
  const pod = fixture('pod-1.30') as { spec: { containers: { name: string }[] } };
  pod.spec.containers[0].name = 'pg';
  const cluster = clusterFixture('cluster-plugin');
  const target = injectionTarget(cluster, pod, 'pgark.io')!;
  assert.throws(() => lifecyclePatch(cluster, pod, target, OPTS), /no container "postgres"/);
});
