/**
 * A small HTTP server playing the documented Kubernetes API for what the operator plugin uses:
 * Roles and RoleBindings (rbac.authorization.k8s.io/v1: get, create, replace, delete), ObjectStores
 * (barmancloud.cnpg.io/v1: get) and Secrets (v1: get). No API server can run here, so this plays
 * its contract: Status objects with reason and code for 404 / 409 AlreadyExists / 409 Conflict on
 * a stale resourceVersion / 422 when a RoleBinding's roleRef changes, and a bearer token check.
 * The client reaches it through a kubeconfig file, as @kubernetes/client-node's loadFromFile does
 * (plain HTTP, so the kubeconfig skips TLS verification; the TLS side is tested on the plugin's own listener).
 */
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Obj = Record<string, any>;

export interface FakeApi {
  url: string;
  kubeconfig: string;
  /** Objects by "<plural>/<namespace>/<name>". */
  objects: Map<string, Obj>;
  /** "METHOD path" of every request, in order. */
  requests: string[];
  put(plural: string, object: Obj): void;
  close(): Promise<void>;
}

const TOKEN = 'operator-plugin-token';

const ROUTE = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/;

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export async function startFakeApi(dir: string): Promise<FakeApi> {
  const objects = new Map<string, Obj>();
  const requests: string[] = [];
  let version = 1000;
  const stamp = (o: Obj, ns: string) => {
    o.metadata = { ...o.metadata, namespace: ns, resourceVersion: String(++version), uid: o.metadata?.uid ?? `uid-${version}` };
    return o;
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}`);
    const send = (code: number, body: Obj) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    const m = ROUTE.exec(url.pathname);
    if (!m) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const [, , ns, plural, name] = m;
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const key = (n: string) => `${plural}/${ns}/${n}`;
      const notFound = (n: string) => send(404, status(404, 'NotFound', `${plural} "${n}" not found`));
      if (req.method === 'GET' && name) return objects.has(key(name)) ? send(200, objects.get(key(name))!) : notFound(name);
      if (req.method === 'POST' && !name) {
        const body = JSON.parse(text) as Obj;
        const n = body.metadata?.name as string;
        if (objects.has(key(n))) return send(409, status(409, 'AlreadyExists', `${plural} "${n}" already exists`));
        objects.set(key(n), stamp(body, ns));
        return send(201, objects.get(key(n))!);
      }
      if (req.method === 'PUT' && name) {
        const body = JSON.parse(text) as Obj;
        const have = objects.get(key(name));
        if (!have) return notFound(name);
        if (body.metadata?.resourceVersion && body.metadata.resourceVersion !== have.metadata.resourceVersion) {
          return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified`));
        }
        if (plural === 'rolebindings' && JSON.stringify(body.roleRef) !== JSON.stringify(have.roleRef)) {
          return send(422, status(422, 'Invalid', `RoleBinding.rbac.authorization.k8s.io "${name}" is invalid: roleRef: Invalid value: cannot change roleRef`));
        }
        objects.set(key(name), stamp({ ...body, metadata: { ...body.metadata, uid: have.metadata.uid } }, ns));
        return send(200, objects.get(key(name))!);
      }
      if (req.method === 'DELETE' && name) {
        if (!objects.delete(key(name))) return notFound(name);
        return send(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
      }
      send(405, status(405, 'MethodNotAllowed', 'method not allowed'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP: client-node allows it only with insecure-skip-tls-verify, which the real API never needs.
      clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'operator', user: { token: TOKEN } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'operator', namespace: 'app' } }],
      'current-context': 'fake',
    }),
  );
  return {
    url,
    kubeconfig,
    objects,
    requests,
    put(plural, object) {
      const ns = object.metadata?.namespace ?? 'app';
      objects.set(`${plural}/${ns}/${object.metadata.name}`, stamp(structuredClone(object), ns));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An ObjectStore as plugin-barman-cloud's CRD defines it (spec.configuration = barmanObjectStore minus serverName). */
export function objectStore(name: string, configuration: Obj, extra: Obj = {}): Obj {
  return { apiVersion: 'barmancloud.cnpg.io/v1', kind: 'ObjectStore', metadata: { name, namespace: 'app' }, spec: { configuration, ...extra } };
}

export function secret(name: string, values: Record<string, string>): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'app' },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}
