/**
 * SecretKeySelector resolution. Sources are tried in order: Secret documents passed with -f,
 * --secrets-dir DIR/NAME/KEY (the layout Kubernetes uses to mount a secret volume), then the
 * Kubernetes API when there is a cluster to ask. Errors and descriptions name secrets, keys and
 * sources, never values.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Secret, SecretKeySelector } from './types.js';
import { ConfigError, UserError } from '../util/errors.js';
import { KubePermissionError, kubernetesAvailability, kubeSecretReader, type KubeSecretReader } from './kube.js';
import { selectorOrigin } from './validate.js';

export interface ResolvedSecret {
  value: string;
  /** Where it came from, e.g. `Secret backup-creds (manifests/secrets.yaml)`; never the value. */
  source: string;
}

type Lookup = { value: Buffer; source: string } | { missing: string };

interface SecretSource {
  lookup(sel: SecretKeySelector, namespace: string | undefined): Promise<Lookup>;
}

function manifestSource(secrets: Secret[]): SecretSource {
  return {
    async lookup(sel, namespace) {
      const byName = secrets.filter(
        (s) => s.metadata.name === sel.name && (!namespace || !s.metadata.namespace || s.metadata.namespace === namespace),
      );
      if (byName.length === 0) return { missing: `no Secret document named "${sel.name}" in the -f manifests` };
      const withKey = byName.find((s) => sel.key in s.values);
      if (!withKey) return { missing: `Secret "${sel.name}" from ${byName[0].origin.file} has no key "${sel.key}" (keys: ${keyList(byName[0].values)})` };
      return { value: withKey.values[sel.key], source: `Secret ${sel.name} (${withKey.origin.file})` };
    },
  };
}

/**
 * Files are read byte for byte, trailing newline included: Kubernetes mounts exactly the stored
 * bytes, so stripping would make pgark disagree with CNPG on a secret that really ends in "\n".
 * Write such files with `printf %s` (or `echo -n`), not `echo`.
 */
function directorySource(dir: string): SecretSource {
  return {
    async lookup(sel) {
      const file = join(dir, sel.name, sel.key);
      try {
        return { value: await readFile(file), source: `--secrets-dir ${join(dir, sel.name)}` };
      } catch {
        let keys: string[] | undefined;
        try {
          keys = (await readdir(join(dir, sel.name))).filter((f) => !f.startsWith('..'));
        } catch {
          return { missing: `--secrets-dir ${dir} has no directory "${sel.name}"` };
        }
        return { missing: `--secrets-dir ${join(dir, sel.name)} has no file "${sel.key}" (keys: ${keys.join(', ') || 'none'})` };
      }
    },
  };
}

function kubernetesSource(reader: KubeSecretReader, availability: string): SecretSource {
  return {
    async lookup(sel, namespace) {
      let secret;
      try {
        secret = await reader.read(sel.name, namespace);
      } catch (err) {
        // No permission is not "no such secret": the plugin reports it as a precondition (the Role comes later).
        if (err instanceof KubePermissionError) throw err;
        return { missing: (err as Error).message };
      }
      const ns = namespace ?? (await reader.defaultNamespace());
      if (!secret) return { missing: `Kubernetes API (${availability}) has no secret ${ns}/${sel.name}` };
      if (!(sel.key in secret.values)) return { missing: `Kubernetes secret ${secret.namespace}/${sel.name} has no key "${sel.key}" (keys: ${keyList(secret.values)})` };
      return { value: secret.values[sel.key], source: `Kubernetes secret ${secret.namespace}/${sel.name}` };
    },
  };
}

function keyList(values: Record<string, unknown>): string {
  return Object.keys(values).join(', ') || 'none';
}

export interface SecretResolverOptions {
  manifests: Secret[];
  secretsDir?: string;
  env?: NodeJS.ProcessEnv;
  /** In-cluster service-account directory (default: the kubelet's mount). */
  serviceAccountDir?: string;
}

export class ChainedSecretResolver {
  private readonly sources: SecretSource[];
  private readonly notTried: string[] = [];

  constructor(opts: SecretResolverOptions) {
    this.sources = [manifestSource(opts.manifests)];
    if (opts.secretsDir) this.sources.push(directorySource(opts.secretsDir));
    else this.notTried.push('--secrets-dir (not given)');
    const kube = kubernetesAvailability(opts.env);
    if (kube) this.sources.push(kubernetesSource(kubeSecretReader({ env: opts.env, serviceAccountDir: opts.serviceAccountDir }), kube));
    else this.notTried.push('Kubernetes API (no KUBERNETES_SERVICE_HOST, KUBECONFIG or ~/.kube/config)');
  }

  async get(selector: SecretKeySelector, namespace?: string): Promise<string> {
    return (await this.resolve(selector, namespace)).value;
  }

  async resolve(selector: SecretKeySelector, namespace?: string): Promise<ResolvedSecret> {
    const reasons: string[] = [];
    for (const source of this.sources) {
      const r = await source.lookup(selector, namespace);
      if ('value' in r) return { value: r.value.toString('utf8'), source: r.source };
      reasons.push(r.missing);
    }
    const message = `secret "${selector.name}" key "${selector.key}" not found; tried: ${[...reasons, ...this.notTried.map((s) => `${s}: not tried`)].join('; ')}`;
    const hint = 'pass the Secret manifest with -f, or --secrets-dir DIR holding DIR/<secret name>/<key>';
    const origin = selectorOrigin(selector);
    if (origin) throw new ConfigError([{ position: origin.position, path: origin.path, message, hint }]);
    throw new UserError(message, hint);
  }
}
