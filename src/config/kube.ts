/**
 * Secrets from the Kubernetes API, used when pgark runs inside a cluster (KUBERNETES_SERVICE_HOST)
 * or a kubeconfig exists (KUBECONFIG or ~/.kube/config). @kubernetes/client-node is heavy, so it
 * is loaded only when a secret is actually looked up there.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Why the Kubernetes API can be used, or undefined when there is no cluster to ask. */
export function kubernetesAvailability(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KUBERNETES_SERVICE_HOST) return 'in-cluster service account';
  if (env.KUBECONFIG) return `kubeconfig ${env.KUBECONFIG}`;
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  return existsSync(home) ? `kubeconfig ${home}` : undefined;
}

export interface KubeSecret {
  /** Key -> decoded bytes. */
  values: Record<string, Buffer>;
  namespace: string;
}

export interface KubeSecretReader {
  /** The secret, undefined when the API answers 404; throws on any other failure. */
  read(name: string, namespace?: string): Promise<KubeSecret | undefined>;
  /** Namespace used when the manifest has none: the kubeconfig context's, else "default". */
  defaultNamespace(): Promise<string>;
}

export function kubeSecretReader(env: NodeJS.ProcessEnv = process.env): KubeSecretReader {
  let client: Promise<{ api: import('@kubernetes/client-node').CoreV1Api; namespace: string }> | undefined;
  const connect = () =>
    (client ??= import('@kubernetes/client-node').then((k8s) => {
      const kc = new k8s.KubeConfig();
      // Same precedence as kubectl, but from `env` so callers (and tests) choose the environment.
      if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]);
      else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
      else kc.loadFromFile(join(env.HOME ?? homedir(), '.kube', 'config'));
      const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
      return { api: kc.makeApiClient(k8s.CoreV1Api), namespace };
    }));
  return {
    async defaultNamespace() {
      return (await connect()).namespace;
    },
    async read(name, namespace) {
      const c = await connect();
      const ns = namespace ?? c.namespace;
      try {
        const secret = await c.api.readNamespacedSecret({ name, namespace: ns });
        const values: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(secret.data ?? {})) values[k] = Buffer.from(v, 'base64');
        return { values, namespace: ns };
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return undefined;
        // The client's error carries the response body, which never holds the secret itself on failure,
        // but keep the message to the status to stay terse.
        throw new Error(`Kubernetes API: reading secret ${ns}/${name} failed${code ? ` with HTTP ${code}` : `: ${(err as Error).message}`}`);
      }
    },
  };
}
