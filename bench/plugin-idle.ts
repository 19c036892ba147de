/**
 * The resident memory of an idle instance sidecar that reads its ObjectStore through the
 * Kubernetes API, as in a pod: `pgark plugin serve --role instance` with no -f manifests,
 * KUBERNETES_SERVICE_HOST/PORT pointing at test/harness/kube-api.ts (no API server runs here) and
 * the service account mounted at the kubelet's path (a private mount namespace: `unshare`, as
 * root), NODE_OPTIONS as the operator injects it, the store a real s3rver.
 *
 *   node dist/bench/plugin-idle.js [--idle S] [--build DIR ...]
 *
 * Each --build is another pgark tree (e.g. a build of main, for a before/after figure in one run);
 * without one, this tree. The sidecar counts as idle once the API has served its Cluster, its
 * ObjectStore and the Secret (the readiness check at start), plus --idle seconds (default 15).
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pluginCluster } from '../test/harness/cnpg-client.js';
import { pluginRole, startKubeApi } from '../test/harness/kube-api.js';
import { startStore } from '../test/harness/stores.js';
import { scratchDir } from '../test/harness/tmp.js';
import { putObjectStore } from '../test/plugin/kube-helpers.js';
import { PACKAGE_ROOT } from '../src/util/package.js';
import { SERVICE_ACCOUNT_DIR } from '../src/config/kube-client.js';
import { SIDECAR_NODE_OPTIONS } from '../src/config/memory.js';
import { numberOption, procStatusKiB } from './util.js';

const NS = 'bench';
const TOKEN = 'bench-sidecar-token';
const idleSeconds = numberOption('idle', 15);
const builds = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--build' ? [a] : []));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

async function measure(build: string): Promise<{ rssKiB: number; hwmKiB: number }> {
  const api = await startKubeApi();
  const store = await startStore('s3');
  const tmp = scratchDir('plugin-idle');
  try {
    putObjectStore(api, store, 'store-a', NS);
    const cluster = pluginCluster({ name: 'pg', namespace: NS, pluginName: 'pgark.io', barmanObjectName: 'store-a' }) as { metadata: { name: string; namespace: string } };
    api.put({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', ...cluster, status: { currentPrimary: 'pg-1' } });
    api.grant(TOKEN, pluginRole(['store-a'], [store.secretName], ['pg']));
    const sa = api.serviceAccount(TOKEN, NS);
    const script = [
      `mount -t tmpfs tmpfs /run`,
      `mkdir -p ${SERVICE_ACCOUNT_DIR}`,
      `cp "$SA"/* ${SERVICE_ACCOUNT_DIR}/`,
      `exec "$NODE" "$PGARK" plugin serve --role instance --name pgark.io --socket-dir "$SOCKETS"`,
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      env: {
        ...process.env,
        ...sa.env,
        SA: sa.dir,
        NODE: process.execPath,
        PGARK: join(build, 'bin', 'pgark.js'),
        SOCKETS: tmp.path,
        NAMESPACE: NS,
        CLUSTER_NAME: 'pg',
        POD_NAME: 'pg-1',
        NODE_OPTIONS: SIDECAR_NODE_OPTIONS,
        PGARK_MEMORY_BUDGET: '128Mi',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const served = (path: string) => api.requests.some((r) => r.status === 200 && r.path.includes(path));
      for (let waited = 0; !(served('/clusters/pg') && served('/objectstores/store-a') && served(`/secrets/${store.secretName}`)); waited += 100) {
        if (child.exitCode !== null || waited > 120_000) throw new Error(`the sidecar did not read its ObjectStore through the API:\n${output}`);
        await sleep(100);
      }
      await sleep(idleSeconds * 1000);
      const samples: number[] = [];
      for (let i = 0; i < 20; i++) {
        samples.push(procStatusKiB(child.pid!, 'VmRSS'));
        await sleep(250);
      }
      samples.sort((a, b) => a - b);
      return { rssKiB: samples[samples.length >> 1], hwmKiB: procStatusKiB(child.pid!, 'VmHWM') };
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  } finally {
    await store.stop();
    await api.close();
    tmp.cleanup();
  }
}

for (const build of builds.length > 0 ? builds : [PACKAGE_ROOT]) {
  const before = loadavg()[0].toFixed(1);
  const { rssKiB, hwmKiB } = await measure(build);
  console.log(`${build}: idle instance sidecar, ObjectStore through the API: VmRSS ${mib(rssKiB)} (median of 20 samples after ${idleSeconds} s idle), VmHWM ${mib(hwmKiB)}; load average ${before} -> ${loadavg()[0].toFixed(1)}`);
}
