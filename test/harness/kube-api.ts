/**
 * A local stand-in for the Kubernetes API server, because none runs here. It plays the documented
 * contract of the few endpoints the CNPG-I plugin's sidecar uses, nothing more:
 *
 *   GET        /api/v1/namespaces/{ns}/secrets/{name}
 *   GET        /apis/barmancloud.cnpg.io/v1/namespaces/{ns}/objectstores/{name}[/status]
 *   PUT, PATCH /apis/barmancloud.cnpg.io/v1/namespaces/{ns}/objectstores/{name}/status
 *   GET        /apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{name}
 *
 * Shapes follow the Kubernetes API reference and @kubernetes/client-node's models: errors are
 * meta/v1 Status objects (reason NotFound / Forbidden / Unauthorized / Conflict / Invalid /
 * UnsupportedMediaType) with the API server's message wording; a write to the status subresource
 * changes only .status, needs metadata.resourceVersion on PUT (custom resources refuse an update
 * without it) and answers 409 when it is stale; PATCH takes application/merge-patch+json (RFC 7386)
 * and application/json-patch+json (RFC 6902); strategic merge patch is refused with 415, as the API
 * server does for custom resources. Server-side apply, watch and list are not played: the plugin
 * does not use them. Bearer tokens are checked: none or unknown is 401, a token whose grants (a
 * Role's rules: resource, verbs, resourceNames) do not allow the request is 403.
 *
 * Clients reach it in-cluster style: KUBERNETES_SERVICE_HOST/PORT plus a service-account directory
 * (token, ca.crt, namespace) from serviceAccount(), or a kubeconfig file from kubeconfig().
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { selfSignedCert } from './s3rver.js';
import { scratchDir } from './tmp.js';

/** One rule of a Role: `resource` is "secrets", "objectstores", "objectstores/status", "clusters". */
export interface Grant {
  resource: string;
  verbs: string[];
  /** resourceNames; absent means every name. */
  names?: string[];
}

/** The rules plugin-barman-cloud's operator puts in the sidecar's Role (role.go), for the named objects. */
export function pluginRole(objectStores: string[], secrets: string[], clusters: string[] = []): Grant[] {
  return [
    { resource: 'objectstores', verbs: ['get', 'watch', 'list'], names: objectStores },
    { resource: 'objectstores/status', verbs: ['update'], names: objectStores },
    { resource: 'secrets', verbs: ['get', 'watch', 'list'], names: secrets },
    // CNPG's own instance Role lets the pod's service account read its Cluster.
    { resource: 'clusters', verbs: ['get', 'watch', 'list'], names: clusters },
  ];
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType?: string;
  authorization?: string;
  status: number;
}

export interface KubeApi {
  url: string;
  host: string;
  port: number;
  caPem: string;
  /** Every request, in order. */
  requests: RecordedRequest[];
  /** Stores (or replaces) an object; sets uid, resourceVersion and creationTimestamp. Returns the stored copy. */
  put(obj: KubeObject): KubeObject;
  /** The stored object, a copy; undefined when absent. */
  get(kind: 'Secret' | 'ObjectStore' | 'Cluster', namespace: string, name: string): KubeObject | undefined;
  /** Registers a bearer token with its rules (replacing earlier ones), as a ServiceAccount bound to a Role. */
  grant(token: string, grants: Grant[], serviceAccount?: string): void;
  /**
   * A service-account directory (token, ca.crt, namespace) as the kubelet mounts it, and the
   * environment an in-cluster pod sees.
   */
  serviceAccount(token: string, namespace: string): { dir: string; env: Record<string, string> };
  /** A kubeconfig file using `token`, with `namespace` as the context's namespace. */
  kubeconfig(token: string, namespace: string): string;
  /** Runs once before the next status write is applied, e.g. to make it stale. */
  beforeNextStatusWrite(fn: () => void): void;
  close(): Promise<void>;
}

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };

interface ResourceType {
  kind: 'Secret' | 'ObjectStore' | 'Cluster';
  group: string;
  plural: string;
  /** Methods allowed on the status subresource. */
  statusWrites: boolean;
}

const RESOURCES: ResourceType[] = [
  { kind: 'Secret', group: '', plural: 'secrets', statusWrites: false },
  { kind: 'ObjectStore', group: 'barmancloud.cnpg.io', plural: 'objectstores', statusWrites: true },
  { kind: 'Cluster', group: 'postgresql.cnpg.io', plural: 'clusters', statusWrites: false },
];

const PATH = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)(\/status)?$/;

class HttpStatus extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export async function startKubeApi(): Promise<KubeApi> {
  const tmp = scratchDir('kube-api');
  const pem = selfSignedCert(tmp.path);
  const caPem = readFileSync(pem.cert, 'utf8');
  const objects = new Map<string, KubeObject>();
  const tokens = new Map<string, { grants: Grant[]; user: string }>();
  const requests: RecordedRequest[] = [];
  let revision = 1000;
  let hook: (() => void) | undefined;
  const keyOf = (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}`;
  const clone = <T>(o: T): T => structuredClone(o);

  const store = (obj: KubeObject): KubeObject => {
    const copy = clone(obj);
    const key = keyOf(copy.kind, copy.metadata.namespace, copy.metadata.name);
    const old = objects.get(key);
    copy.metadata.uid = old?.metadata.uid ?? randomUUID();
    copy.metadata.creationTimestamp = old?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    copy.metadata.resourceVersion = String(++revision);
    objects.set(key, copy);
    return clone(copy);
  };

  const handle = async (req: IncomingMessage): Promise<{ code: number; body: unknown }> => {
    const url = new URL(req.url ?? '/', 'https://x');
    const m = PATH.exec(url.pathname);
    const type = m && RESOURCES.find((r) => r.group === (m[1] ?? '') && r.plural === m[3]);
    if (!m || !type) throw new HttpStatus(404, 'NotFound', 'the server could not find the requested resource');
    const [, , namespace, , name, status] = m;
    const qualified = type.group ? `${type.plural}.${type.group}` : type.plural;
    const details = { name, group: type.group || undefined, kind: type.plural };

    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const who = auth ? tokens.get(auth[1]) : undefined;
    if (!who) throw new HttpStatus(401, 'Unauthorized', 'Unauthorized');
    const verb = { GET: 'get', PUT: 'update', PATCH: 'patch' }[req.method ?? ''];
    if (!verb || (verb !== 'get' && !(status && type.statusWrites))) {
      throw new HttpStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, details);
    }
    const resource = type.plural + (status ?? '');
    const allowed = who.grants.some((g) => g.resource === resource && g.verbs.includes(verb) && (!g.names || g.names.includes(name)));
    if (!allowed) {
      throw new HttpStatus(
        403,
        'Forbidden',
        `${qualified} "${name}" is forbidden: User "${who.user}" cannot ${verb} resource "${resource}" in API group "${type.group}" in the namespace "${namespace}"`,
        details,
      );
    }
    const key = keyOf(type.kind, namespace, name);
    const current = objects.get(key);
    if (!current) throw new HttpStatus(404, 'NotFound', `${qualified} "${name}" not found`, details);
    if (verb === 'get') return { code: 200, body: clone(current) };

    const text = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpStatus(400, 'BadRequest', 'the request body is not valid JSON');
    }
    let next: KubeObject;
    if (verb === 'update') {
      const sent = body as Partial<KubeObject>;
      if (sent?.metadata?.name !== name) throw new HttpStatus(400, 'BadRequest', `the name of the object (${sent?.metadata?.name}) does not match the name on the URL (${name})`);
      if (!sent.metadata.resourceVersion) {
        throw new HttpStatus(422, 'Invalid', `${type.kind}.${type.group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`, details);
      }
      conflictUnlessCurrent(sent.metadata.resourceVersion, current, qualified, name, details);
      next = { ...clone(current), status: clone(sent.status) };
    } else {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim();
      let patched: KubeObject;
      if (contentType === 'application/merge-patch+json') {
        patched = mergePatch(clone(current), body) as KubeObject;
      } else if (contentType === 'application/json-patch+json') {
        patched = jsonPatch(clone(current), body);
      } else {
        throw new HttpStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
      }
      const sentVersion = patched.metadata?.resourceVersion;
      if (sentVersion !== current.metadata.resourceVersion) conflictUnlessCurrent(sentVersion, current, qualified, name, details);
      // The status subresource ignores every change outside .status.
      next = { ...clone(current), status: patched.status };
    }
    if (next.status === undefined) delete next.status;
    const run = hook;
    hook = undefined;
    run?.();
    // The hook may have changed the object: a write that read it before is stale now.
    const latest = objects.get(key)!;
    if (latest.metadata.resourceVersion !== current.metadata.resourceVersion) {
      conflictUnlessCurrent(current.metadata.resourceVersion, latest, qualified, name, details);
    }
    return { code: 200, body: store(next) };
  };

  const server: Server = createServer({ key: readFileSync(pem.key), cert: caPem }, (req, res: ServerResponse) => {
    const record: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      status: 0,
    };
    requests.push(record);
    handle(req).then(
      ({ code, body }) => send(res, record, code, body),
      (err: unknown) => {
        const e = err instanceof HttpStatus ? err : new HttpStatus(500, 'InternalError', String(err));
        const body = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, ...(e.details ? { details: e.details } : {}), code: e.code };
        send(res, record, e.code, body);
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  return {
    url,
    host: '127.0.0.1',
    port,
    caPem,
    requests,
    put: store,
    get: (kind, ns, name) => {
      const o = objects.get(keyOf(kind, ns, name));
      return o ? clone(o) : undefined;
    },
    grant: (token, grants, serviceAccount = 'system:serviceaccount:default:pgark') => tokens.set(token, { grants, user: serviceAccount }),
    serviceAccount(token, namespace) {
      const dir = join(tmp.path, `sa-${randomUUID()}`);
      mkdirSync(dir);
      // The kubelet writes the token without a trailing newline.
      writeFileSync(join(dir, 'token'), token);
      writeFileSync(join(dir, 'ca.crt'), caPem);
      writeFileSync(join(dir, 'namespace'), namespace);
      return { dir, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) } };
    },
    kubeconfig(token, namespace) {
      const file = join(tmp.path, `kubeconfig-${randomUUID()}`);
      writeFileSync(
        file,
        `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: "${url}", certificate-authority-data: "${Buffer.from(caPem).toString('base64')}"}
users:
- name: sa
  user: {token: "${token}"}
contexts:
- name: fake
  context: {cluster: fake, user: sa, namespace: ${namespace}}
current-context: fake
`,
      );
      return file;
    },
    beforeNextStatusWrite(fn) {
      hook = fn;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          tmp.cleanup();
          r();
        });
      }),
  };
}

function conflictUnlessCurrent(sent: string | undefined, current: KubeObject, qualified: string, name: string, details: Record<string, unknown>): void {
  if (sent === undefined || sent === current.metadata.resourceVersion) return;
  throw new HttpStatus(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details,
  );
}

function send(res: ServerResponse, record: RecordedRequest, code: number, body: unknown): void {
  record.status = code;
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 add / remove / replace / test, which is what clients send to a status. */
function jsonPatch(doc: KubeObject, ops: unknown): KubeObject {
  if (!Array.isArray(ops)) throw new HttpStatus(400, 'BadRequest', 'json patch must be an array of operations');
  for (const op of ops as { op: string; path: string; value?: unknown }[]) {
    const parts = op.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    let parent: unknown = doc;
    for (const p of parts) parent = isObject(parent) || Array.isArray(parent) ? (parent as Record<string, unknown>)[p] : undefined;
    if (last === undefined || !(isObject(parent) || Array.isArray(parent))) {
      throw new HttpStatus(422, 'Invalid', `the server rejected our request due to an error in our request: doc is missing path: "${op.path}"`);
    }
    const container = parent as Record<string, unknown>;
    if (op.op === 'add' || op.op === 'replace') {
      if (op.op === 'replace' && !(last in container)) {
        throw new HttpStatus(422, 'Invalid', `the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: ${op.path}`);
      }
      container[last] = op.value;
    } else if (op.op === 'remove') {
      if (!(last in container)) throw new HttpStatus(422, 'Invalid', `the server rejected our request due to an error in our request: remove operation does not apply: doc is missing path: "${op.path}"`);
      delete container[last];
    } else if (op.op === 'test') {
      if (JSON.stringify(container[last]) !== JSON.stringify(op.value)) throw new HttpStatus(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed`);
    } else {
      throw new HttpStatus(422, 'Invalid', `the server rejected our request due to an error in our request: unsupported operation: ${op.op}`);
    }
  }
  return doc;
}
