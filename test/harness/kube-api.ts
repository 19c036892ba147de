/**
 * A local stand-in for the Kubernetes API server, because none runs here: the one every test that
 * talks to the API uses. It plays the documented contract of the endpoints pgark's sidecar,
 * restore job and operator use, nothing more:
 *
 *   /api/v1/namespaces/{ns}/secrets/{name}
 *   /apis/barmancloud.cnpg.io/v1/namespaces/{ns}/objectstores/{name}[/status]
 *   /apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{name}[/status]
 *   /apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles[/{name}], .../rolebindings[/{name}]
 *
 * GET, PUT, PATCH and DELETE on an object, POST on a collection. Shapes follow the Kubernetes API
 * reference and @kubernetes/client-node's models: errors are meta/v1 Status objects (reason
 * NotFound / Forbidden / Unauthorized / AlreadyExists / Conflict / Invalid / UnsupportedMediaType)
 * with the API server's message wording. An update needs metadata.resourceVersion on custom
 * resources (core and RBAC objects take one without it as "last write wins") and answers 409 when
 * it is stale; a write to the status subresource changes only .status, and one to the object
 * leaves .status of a type that has the subresource; a RoleBinding's roleRef cannot change (422).
 * PATCH takes application/merge-patch+json (RFC 7386) and application/json-patch+json (RFC 6902);
 * strategic merge patch is refused with 415, as the API server does for custom resources.
 * Server-side apply, watch and list are not played: pgark does not use them. Bearer tokens are
 * checked: none or unknown is 401, a token whose grants (a Role's rules: resource, verbs,
 * resourceNames) do not allow the request is 403.
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

/** One rule of a Role: `resource` is e.g. "secrets", "objectstores", "objectstores/status", "roles". */
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

/** The operator plugin's ClusterRole as docs/cnpg-plugin.md lists it ("RBAC the operator role keeps"). */
export function operatorRole(): Grant[] {
  return [
    { resource: 'objectstores', verbs: ['get'] },
    { resource: 'secrets', verbs: ['get'] },
    { resource: 'roles', verbs: ['get', 'create', 'update', 'delete'] },
    { resource: 'rolebindings', verbs: ['get', 'create', 'update', 'delete'] },
  ];
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType?: string;
  authorization?: string;
  /** The request body as sent. */
  body: string;
  status: number;
}

export type Kind = 'Secret' | 'ObjectStore' | 'Cluster' | 'Role' | 'RoleBinding';

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
  get(kind: Kind, namespace: string, name: string): KubeObject | undefined;
  /** Registers a bearer token with its rules (replacing earlier ones), as a ServiceAccount bound to a Role. */
  grant(token: string, grants: Grant[], serviceAccount?: string): void;
  /**
   * A service-account directory (token, ca.crt, namespace) as the kubelet mounts it, and the
   * environment an in-cluster pod sees.
   */
  serviceAccount(token: string, namespace: string): { dir: string; env: Record<string, string> };
  /** A kubeconfig file using `token`, with `namespace` as the context's namespace. */
  kubeconfig(token: string, namespace: string): string;
  /** Forgets a token: requests carrying it are 401 from now on, as after a service account's token is invalidated. */
  revoke(token: string): void;
  /** Answers the next request with this Status instead of serving it (an API server's own failure). */
  failNext(code: number, reason: string, message: string): void;
  /** Runs once before the next status write is applied, e.g. to make it stale. */
  beforeNextStatusWrite(fn: () => void): void;
  close(): Promise<void>;
}

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };

interface ResourceType {
  kind: Kind;
  group: string;
  plural: string;
  /** Whether the type has a status subresource. */
  statusSubresource: boolean;
  /** Custom resources refuse an update without metadata.resourceVersion; built-in types take it unconditionally. */
  updateNeedsVersion: boolean;
}

const RESOURCES: ResourceType[] = [
  { kind: 'Secret', group: '', plural: 'secrets', statusSubresource: false, updateNeedsVersion: false },
  { kind: 'ObjectStore', group: 'barmancloud.cnpg.io', plural: 'objectstores', statusSubresource: true, updateNeedsVersion: true },
  { kind: 'Cluster', group: 'postgresql.cnpg.io', plural: 'clusters', statusSubresource: true, updateNeedsVersion: true },
  { kind: 'Role', group: 'rbac.authorization.k8s.io', plural: 'roles', statusSubresource: false, updateNeedsVersion: false },
  { kind: 'RoleBinding', group: 'rbac.authorization.k8s.io', plural: 'rolebindings', statusSubresource: false, updateNeedsVersion: false },
];

const PATH = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(\/status)?$/;

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
  let failure: HttpStatus | undefined;
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

  const handle = async (req: IncomingMessage, text: string): Promise<{ code: number; body: unknown }> => {
    const failing = failure;
    failure = undefined;
    if (failing) throw failing;
    const url = new URL(req.url ?? '/', 'https://x');
    const m = PATH.exec(url.pathname);
    const type = m && RESOURCES.find((r) => r.group === (m[1] ?? '') && r.plural === m[3]);
    if (!m || !type || (m[5] && !type.statusSubresource)) throw new HttpStatus(404, 'NotFound', 'the server could not find the requested resource');
    const [, , namespace, , pathName, status] = m;
    const qualified = type.group ? `${type.plural}.${type.group}` : type.plural;

    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const who = auth ? tokens.get(auth[1]) : undefined;
    if (!who) throw new HttpStatus(401, 'Unauthorized', 'Unauthorized');
    const verb = pathName ? { GET: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[req.method ?? ''] : req.method === 'POST' ? 'create' : undefined;
    if (!verb) throw new HttpStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const body = verb === 'get' || verb === 'delete' ? undefined : parseJson(text);
    const name = pathName ?? (body as Partial<KubeObject> | undefined)?.metadata?.name ?? '';
    const details = { name, group: type.group || undefined, kind: type.plural };
    const resource = type.plural + (status ?? '');
    // A create is authorised without a name: RBAC cannot restrict create by resourceNames.
    const allowed = who.grants.some((g) => g.resource === resource && g.verbs.includes(verb) && (!g.names || verb === 'create' || g.names.includes(name)));
    if (!allowed) {
      throw new HttpStatus(
        403,
        'Forbidden',
        `${qualified}${pathName ? ` "${name}"` : ''} is forbidden: User "${who.user}" cannot ${verb} resource "${resource}" in API group "${type.group}" in the namespace "${namespace}"`,
        details,
      );
    }
    const key = keyOf(type.kind, namespace, name);
    const current = objects.get(key);
    if (verb === 'create') {
      if (current) throw new HttpStatus(409, 'AlreadyExists', `${qualified} "${name}" already exists`, details);
      const sent = body as KubeObject;
      return { code: 201, body: store({ ...sent, metadata: { ...sent.metadata, namespace } }) };
    }
    if (!current) throw new HttpStatus(404, 'NotFound', `${qualified} "${name}" not found`, details);
    if (verb === 'get') return { code: 200, body: clone(current) };
    if (verb === 'delete') {
      objects.delete(key);
      return { code: 200, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details } };
    }

    let sent: KubeObject;
    if (verb === 'update') {
      sent = body as KubeObject;
      if (sent?.metadata?.name !== name) throw new HttpStatus(400, 'BadRequest', `the name of the object (${sent?.metadata?.name}) does not match the name on the URL (${name})`);
      if (!sent.metadata.resourceVersion && type.updateNeedsVersion) {
        throw new HttpStatus(422, 'Invalid', `${type.kind}.${type.group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`, details);
      }
      conflictUnlessCurrent(sent.metadata.resourceVersion, current, qualified, name, details);
    } else {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim();
      if (contentType === 'application/merge-patch+json') {
        sent = mergePatch(clone(current), body) as KubeObject;
      } else if (contentType === 'application/json-patch+json') {
        sent = jsonPatch(clone(current), body);
      } else {
        throw new HttpStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
      }
      const sentVersion = sent.metadata?.resourceVersion;
      if (sentVersion !== current.metadata.resourceVersion) conflictUnlessCurrent(sentVersion, current, qualified, name, details);
    }
    let next: KubeObject;
    if (status) {
      // The status subresource ignores every change outside .status.
      next = { ...clone(current), status: clone(sent.status) };
    } else {
      next = { ...clone(sent), metadata: { ...clone(sent.metadata), namespace, name } };
      // With a status subresource, a write to the object leaves .status as it was.
      if (type.statusSubresource) next.status = clone(current.status);
      if (type.kind === 'RoleBinding' && JSON.stringify(next.roleRef) !== JSON.stringify(current.roleRef)) {
        throw new HttpStatus(422, 'Invalid', `RoleBinding.rbac.authorization.k8s.io "${name}" is invalid: roleRef: Invalid value: cannot change roleRef`, details);
      }
    }
    if (next.status === undefined) delete next.status;
    if (status) {
      const run = hook;
      hook = undefined;
      run?.();
      // The hook may have changed the object: a write that read it before is stale now.
      const latest = objects.get(key)!;
      if (latest.metadata.resourceVersion !== current.metadata.resourceVersion) {
        conflictUnlessCurrent(current.metadata.resourceVersion, latest, qualified, name, details);
      }
    }
    return { code: 200, body: store(next) };
  };

  const server: Server = createServer({ key: readFileSync(pem.key), cert: caPem }, (req, res: ServerResponse) => {
    const record: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      body: '',
      status: 0,
    };
    requests.push(record);
    readBody(req)
      .then((text) => {
        record.body = text;
        return handle(req, text);
      })
      .then(
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
    revoke: (token) => void tokens.delete(token),
    failNext(code, reason, message) {
      failure = new HttpStatus(code, reason, message);
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpStatus(400, 'BadRequest', 'the request body is not valid JSON');
  }
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

/** An ObjectStore as plugin-barman-cloud's CRD defines it (spec.configuration = barmanObjectStore minus serverName), in namespace "app". */
export function objectStore(name: string, configuration: Record<string, unknown>, extra: Record<string, unknown> = {}, namespace = 'app'): KubeObject {
  return { apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name, namespace }, spec: { configuration, ...extra } };
}

/** An Opaque Secret with `values` base64-encoded in data, as the API returns it. */
export function secret(name: string, values: Record<string, string>, namespace = 'app'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/** A kubeconfig whose token holds operatorRole(), as the operator plugin's Deployment runs (context namespace "app"). */
export function operatorKubeconfig(api: KubeApi): string {
  api.grant('operator-plugin-token', operatorRole(), 'system:serviceaccount:cnpg-system:pgark-operator');
  return api.kubeconfig('operator-plugin-token', 'app');
}
