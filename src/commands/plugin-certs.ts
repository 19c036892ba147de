/**
 * `pgark plugin certs`: the certificates the operator plugin's mutual TLS needs, without
 * cert-manager (a setup step plugin-barman-cloud users trip over): a CA, a server certificate for
 * the plugin Service's DNS names and a client certificate for CNPG, as two kubernetes.io/tls
 * Secrets that each carry ca.crt. Node's crypto cannot sign X.509 certificates, and no X.509
 * library is installed; the openssl CLI is on every Debian-based image (pgark's included) and is
 * the reference implementation, so it does the signing. The CA key is never written: to rotate,
 * run the command again and replace both Secrets.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { stringify } from 'yaml';
import { UserError } from '../util/errors.js';
import { KubeApiError, kubeConnector, kubeResource } from '../config/kube-client.js';

export interface PluginCertsOptions {
  namespace?: string;
  service: string;
  outputDir?: string;
  apply?: boolean;
}

export interface PluginCerts {
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
}

/** The names a client may dial the Service by, in-cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

const LEAF_DAYS = '825';

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new UserError('openssl is not installed', 'install it (apt-get install openssl) or run pgark plugin certs from the pgark image');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? e.message}`);
  }
}

/** A fresh CA, and server and client certificates signed by it (EC P-256 keys, PEM). */
export function generatePluginCerts(service: string, namespace: string): PluginCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pgark-certs-'));
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc'];
    openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', `/CN=${service}-plugin-ca`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const leaf = (name: string, cn: string, ext: string) => {
      writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
      openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${Date.now().toString(16)}${name === 'server' ? '1' : '2'}`,
        '-days', LEAF_DAYS, '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
      return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
    };
    const server = leaf('server', service, `extendedKeyUsage=serverAuth\nsubjectAltName=${serviceDnsNames(service, namespace).map((n) => `DNS:${n}`).join(',')}`);
    const client = leaf('client', `${service}-client`, 'extendedKeyUsage=clientAuth');
    return { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), server, client };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function secretNames(service: string): { server: string; client: string } {
  return { server: `${service}-server-tls`, client: `${service}-client-tls` };
}

function tlsSecret(name: string, namespace: string, pair: { cert: string; key: string }, ca: string) {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'pgark' } },
    data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), 'ca.crt': b64(ca) },
  };
}

export function pluginSecrets(certs: PluginCerts, service: string, namespace: string) {
  const names = secretNames(service);
  return [tlsSecret(names.server, namespace, certs.server, certs.ca), tlsSecret(names.client, namespace, certs.client, certs.ca)];
}

export async function pluginCerts(opts: PluginCertsOptions): Promise<void> {
  if (!opts.namespace) throw new UserError('--namespace is required', 'the namespace of the plugin Service: its DNS names go into the server certificate');
  if (!opts.outputDir === !opts.apply) throw new UserError('pass exactly one of -o DIR and --apply', '-o writes files to review or commit; --apply creates the Secrets in the cluster');
  const certs = generatePluginCerts(opts.service, opts.namespace);
  const secrets = pluginSecrets(certs, opts.service, opts.namespace);
  const names = secretNames(opts.service);
  if (opts.outputDir) {
    mkdirSync(opts.outputDir, { recursive: true });
    const write = (file: string, text: string) => writeFileSync(join(opts.outputDir!, file), text, { mode: 0o600 });
    write('ca.crt', certs.ca);
    write('server.crt', certs.server.cert);
    write('server.key', certs.server.key);
    write('client.crt', certs.client.cert);
    write('client.key', certs.client.key);
    write('secrets.yaml', secrets.map((s) => stringify(s)).join('---\n'));
    process.stdout.write(`wrote ca.crt, server.crt, server.key, client.crt, client.key and secrets.yaml (Secrets ${names.server}, ${names.client}) to ${opts.outputDir}\n`);
  } else {
    const secretsApi = kubeResource(kubeConnector({}), { group: '', version: 'v1', plural: 'secrets' });
    for (const body of secrets) {
      try {
        await secretsApi.create(opts.namespace, body);
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 409) throw new UserError(`Secret ${opts.namespace}/${body.metadata.name} already exists`, 'delete both Secrets to rotate the certificates, then run the command again');
        throw new Error(`Kubernetes API: creating Secret ${opts.namespace}/${body.metadata.name} failed${err instanceof KubeApiError ? ` with ${err.message}` : `: ${(err as Error).message}`}`);
      }
      process.stdout.write(`created Secret ${opts.namespace}/${body.metadata.name}\n`);
    }
  }
  process.stdout.write(
    `annotate the plugin Service: cnpg.io/pluginServerSecret: ${names.server}, cnpg.io/pluginClientSecret: ${names.client}, cnpg.io/pluginPort: "9090"\n`,
  );
}
