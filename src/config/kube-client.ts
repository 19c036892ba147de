/**
 * The Kubernetes API over node:https: one connection (in-cluster service account, else a
 * kubeconfig as kubectl finds it) and JSON requests on namespaced objects. Nothing else.
 *
 * Why hand-written: importing @kubernetes/client-node costs about 48 MiB of resident memory on its
 * own (its generated models, openid-client, ws, and their dependencies), which put an idle
 * instance sidecar that reads its ObjectStore through the API near 135 MiB, over the 128Mi limit
 * the operator gives it (issue 13; figures in docs/measurements/plugin-memory.md). The sidecar,
 * the restore job and the operator make a dozen kinds of request (get / create / replace / delete
 * of one object); node:https carries them, and undici (fetch) is not used because it cannot take a
 * private CA without importing undici's own Agent.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { PgarkError, UserError } from '../util/errors.js';

/** Where the kubelet mounts a pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeOptions {
  /** Environment consulted (KUBERNETES_SERVICE_HOST/PORT, KUBECONFIG, HOME); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The service-account directory for in-cluster access; default SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
}

/**
 * The API answered with a non-2xx status. Only the status code and the Status object's `reason`
 * (a fixed word such as NotFound) are kept: the body's message may quote the request.
 */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string | undefined,
  ) {
    super(`HTTP ${code}${reason ? ` ${reason}` : ''}`);
  }
}

/** One type of namespaced object as its API path spells it; group '' is the core API (/api/v1). */
export interface KubeResourceType {
  group: string;
  version: string;
  plural: string;
}

export interface KubeConnection {
  /** The kubeconfig context's namespace, or the service account's; else "default". */
  namespace: string;
  /** Sends `body` as JSON; the parsed JSON answer, or KubeApiError. */
  request(method: string, path: string, body?: unknown): Promise<unknown>;
}

/** The path of a namespaced collection, or of one object (and its subresource) in it. */
function resourcePath(type: KubeResourceType, namespace: string, name?: string, subresource?: string): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const parts = [base, 'namespaces', namespace, type.plural, name, subresource].filter((p) => p !== undefined);
  return parts.map((p, i) => (i === 0 ? p : encodeURIComponent(p!))).join('/');
}

/** The four object verbs on one resource type; get answers undefined on 404, everything else throws KubeApiError. */
export function kubeResource(connect: () => Promise<KubeConnection>, type: KubeResourceType) {
  const call = async (method: string, namespace: string, name?: string, body?: unknown, subresource?: string) =>
    (await connect()).request(method, resourcePath(type, namespace, name, subresource), body);
  return {
    async get(namespace: string, name: string): Promise<unknown | undefined> {
      try {
        return await call('GET', namespace, name);
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) return undefined;
        throw err;
      }
    },
    create: (namespace: string, body: unknown) => call('POST', namespace, undefined, body),
    replace: (namespace: string, name: string, body: unknown, subresource?: string) => call('PUT', namespace, name, body, subresource),
    delete: (namespace: string, name: string) => call('DELETE', namespace, name),
  };
}

/** The API's own limit on an object is 1.5 MiB (etcd's request size); an answer past this is not one object. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** A request that has not answered in this time fails rather than holding up a gRPC call forever. */
const REQUEST_TIMEOUT_MS = 30_000;

/** How requests authenticate: a bearer token (re-read when asked), or a client certificate in the agent. */
interface Credentials {
  /** The Authorization header, if any; `renew` after a 401 forces an exec plugin to run again. */
  authorization(renew: boolean): Promise<string | undefined>;
  /** Whether a 401 is worth one more attempt with a renewed credential (exec plugins only: files are read afresh anyway). */
  renewable?: boolean;
}

interface Endpoint {
  server: URL;
  agent: HttpAgent;
  credentials: Credentials;
  namespace: string;
}

/** One lazily made connection: in-cluster from `env` and the service-account directory, else a kubeconfig as kubectl finds it. */
export function kubeConnector(opts: KubeOptions): () => Promise<KubeConnection> {
  const env = opts.env ?? process.env;
  let connection: Promise<KubeConnection> | undefined;
  return () =>
    (connection ??= (async () => {
      let endpoint: Endpoint;
      if (env.KUBECONFIG) endpoint = await fromKubeconfig(env.KUBECONFIG.split(':')[0], env);
      else if (env.KUBERNETES_SERVICE_HOST) endpoint = inCluster(env, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
      else endpoint = await fromKubeconfig(join(env.HOME ?? homedir(), '.kube', 'config'), env);
      return { namespace: endpoint.namespace, request: (method, path, body) => send(endpoint, method, path, body) };
    })());
}

/**
 * What client-go's rest.InClusterConfig reads, from `env` and `dir` so a caller (and a test)
 * chooses them. The token is re-read at every request: the kubelet rotates a projected token
 * (hourly by default) by replacing the file, and a request is rare enough (the ObjectStore is
 * cached) that reading a few hundred bytes each time costs nothing.
 */
function inCluster(env: NodeJS.ProcessEnv, dir: string): Endpoint {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  const caFile = join(dir, 'ca.crt');
  const tokenFile = join(dir, 'token');
  const ca = readOrExplain(caFile, 'the service-account CA');
  const nsFile = join(dir, 'namespace');
  return {
    server,
    agent: new HttpsAgent({ keepAlive: true, ca }),
    credentials: { authorization: async () => `Bearer ${(await readFile(tokenFile, 'utf8')).trim()}` },
    namespace: existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : 'default',
  };
}

function readOrExplain(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UserError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'in a pod, automountServiceAccountToken must not be false');
  }
}

type Named<T> = { name?: string } & T;
interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string; namespace?: string } }>[];
  clusters?: Named<{ cluster?: Record<string, unknown> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
}

/**
 * The current context of a kubeconfig, with the fields kubectl and client-node honour for a
 * cluster (server, certificate-authority[-data], insecure-skip-tls-verify, tls-server-name) and a
 * user (token, tokenFile, client-certificate[-data] / client-key[-data], username / password,
 * exec). Relative file names are relative to the kubeconfig, as kubectl resolves them.
 */
async function fromKubeconfig(file: string, env: NodeJS.ProcessEnv): Promise<Endpoint> {
  let config: KubeconfigFile;
  try {
    config = (parse(readFileSync(file, 'utf8')) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new UserError(`cannot read kubeconfig ${file}: ${(err as Error).message}`, 'point KUBECONFIG at a valid kubeconfig, or unset it to use ~/.kube/config');
  }
  const bad = (field: string, expected: string) => new UserError(`kubeconfig ${file}: ${field}: ${expected}`, 'check it with `kubectl config view`');
  const contextName = config['current-context'];
  if (!contextName) throw bad('current-context', 'expected the name of a context, found none');
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw bad('current-context', `no context named "${contextName}" in contexts`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw bad(`contexts[${contextName}].context.cluster`, `no cluster named "${context.cluster}" with a server in clusters`);
  const user = config.users?.find((u) => u.name === context.user)?.user ?? {};
  const path = (p: unknown) => (typeof p === 'string' ? (isAbsolute(p) ? p : join(dirname(file), p)) : undefined);
  const data = (inline: unknown, fileField: unknown) => (typeof inline === 'string' ? Buffer.from(inline, 'base64') : path(fileField) && readFileSync(path(fileField)!));

  const server = new URL(cluster.server);
  const tls = {
    keepAlive: true,
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
  };
  if (user['auth-provider']) {
    const provider = (user['auth-provider'] as { name?: string }).name;
    throw bad(`users[${context.user}].user.auth-provider`, `"${provider}" is not supported by pgark; use an exec credential plugin (users[].user.exec) or a token`);
  }
  return {
    server,
    agent: server.protocol === 'http:' ? new HttpAgent({ keepAlive: true }) : new HttpsAgent(tls),
    credentials: userCredentials(user, path, env),
    namespace: context.namespace ?? 'default',
  };
}

function userCredentials(user: Record<string, unknown>, path: (p: unknown) => string | undefined, env: NodeJS.ProcessEnv): Credentials {
  if (typeof user.token === 'string') {
    const header = `Bearer ${user.token}`;
    return { authorization: async () => header };
  }
  const tokenFile = path(user.tokenFile);
  if (tokenFile) return { authorization: async () => `Bearer ${(await readFile(tokenFile, 'utf8')).trim()}` };
  if (typeof user.username === 'string') {
    const header = `Basic ${Buffer.from(`${user.username}:${String(user.password ?? '')}`).toString('base64')}`;
    return { authorization: async () => header };
  }
  if (user.exec) return execCredentials(user.exec as ExecConfig, env);
  return { authorization: async () => undefined };
}

interface ExecConfig {
  command?: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
}

/**
 * A client-go credential plugin (client.authentication.k8s.io ExecCredential): its token is kept
 * until its expirationTimestamp, or until the API answers 401, then the command runs again.
 */
function execCredentials(exec: ExecConfig, env: NodeJS.ProcessEnv): Credentials {
  let cached: { header: string; expires: number } | undefined;
  return {
    renewable: true,
    async authorization(renew) {
      if (!renew && cached && Date.now() < cached.expires) return cached.header;
      const apiVersion = exec.apiVersion ?? 'client.authentication.k8s.io/v1';
      const childEnv = { ...env, ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])), KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false } }) };
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(exec.command ?? '', exec.args ?? [], { env: childEnv, maxBuffer: 1024 * 1024, timeout: REQUEST_TIMEOUT_MS }, (err, out, stderr) =>
          // The plugin's stderr is its own diagnostics (never the credential, which goes to stdout).
          err ? reject(new PgarkError(`kubeconfig exec credential plugin ${exec.command} failed: ${String(stderr).trim() || err.message}`)) : resolve(out),
        ),
      );
      let status: { token?: unknown; expirationTimestamp?: unknown } | undefined;
      try {
        status = (JSON.parse(stdout) as { status?: typeof status }).status;
      } catch {
        // The output is not quoted in the error: it may hold the credential.
      }
      if (typeof status?.token !== 'string') throw new PgarkError(`kubeconfig exec credential plugin ${exec.command} printed no ExecCredential with status.token`);
      const expires = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : Infinity;
      cached = { header: `Bearer ${status.token}`, expires };
      return cached.header;
    },
  };
}

async function send(endpoint: Endpoint, method: string, path: string, body: unknown): Promise<unknown> {
  const attempt = async (renew: boolean) => {
    const authorization = await endpoint.credentials.authorization(renew);
    return exchange(endpoint, method, path, body === undefined ? undefined : JSON.stringify(body), authorization);
  };
  const first = await attempt(false);
  // A 401 can mean the plugin's token was revoked before its expiry: ask for a fresh one once.
  const answer = first.code === 401 && endpoint.credentials.renewable ? await attempt(true) : first;
  if (answer.code >= 200 && answer.code < 300) {
    if (answer.json === NOT_JSON) throw new PgarkError(`Kubernetes API: the answer to ${method} ${path} (HTTP ${answer.code}) is not JSON`);
    return answer.json;
  }
  const reason = (answer.json === NOT_JSON ? undefined : (answer.json as { reason?: unknown } | undefined))?.reason;
  throw new KubeApiError(answer.code, typeof reason === 'string' ? reason : undefined);
}

const NOT_JSON = Symbol('not JSON');

function exchange(endpoint: Endpoint, method: string, path: string, body: string | undefined, authorization: string | undefined): Promise<{ code: number; json: unknown }> {
  const url = new URL(path, endpoint.server);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (authorization) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: endpoint.agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) res.destroy(new PgarkError(`Kubernetes API: the answer to ${method} ${url.pathname} exceeds ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          // A proxy's error page, say: the caller reports the status, never the text.
          json = NOT_JSON;
        }
        resolve({ code: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new PgarkError(`Kubernetes API: ${method} ${url.pathname} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}
