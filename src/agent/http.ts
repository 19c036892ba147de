/**
 * The agent's HTTP endpoints: /metrics (Prometheus text), /healthz (the process answers),
 * /readyz (configuration loaded and every object store answered recently), /status (JSON),
 * /timeline (the recoverability timeline as an HTML page; ?cluster=NAME when there are several).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { UserError } from '../util/errors.js';

export interface HttpHandlers {
  registry: Registry;
  /** undefined when ready, else the reason. */
  notReady(): string | undefined;
  status(): Promise<unknown>;
  /** The timeline page of a Cluster (undefined: the first); rejects with a UserError for an unknown name. */
  timeline(cluster: string | undefined): Promise<string>;
}

/** Parses HOST:PORT (IPv6 as [::1]:9187); PORT alone listens on 127.0.0.1. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--listen: "${text}" is not HOST:PORT`, 'e.g. --listen 127.0.0.1:9187 (or 0.0.0.0:9187 to be scraped from other hosts)');
  }
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function startHttpServer(listen: { host: string; port: number }, h: HttpHandlers): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'method not allowed\n');
    switch (path) {
      case '/metrics':
        h.registry.metrics().then(
          (text) => reply(200, h.registry.contentType, text),
          (err: Error) => reply(500, 'text/plain', `metrics failed: ${err.message}\n`),
        );
        return;
      case '/healthz':
        return reply(200, 'text/plain', 'ok\n');
      case '/readyz': {
        const reason = h.notReady();
        return reason ? reply(503, 'text/plain', `not ready: ${reason}\n`) : reply(200, 'text/plain', 'ready\n');
      }
      case '/status':
        h.status().then(
          (status) => reply(200, 'application/json', JSON.stringify(status, null, 2) + '\n'),
          (err: Error) => reply(500, 'text/plain', `status failed: ${err.message}\n`),
        );
        return;
      case '/timeline':
        h.timeline(new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('cluster') ?? undefined).then(
          (html) => reply(200, 'text/html; charset=utf-8', html),
          (err: Error) => reply(err instanceof UserError ? 404 : 500, 'text/plain', `timeline failed: ${err.message}\n`),
        );
        return;
      default:
        return reply(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz, /status or /timeline\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return { server, url: `http://${host}:${port}` };
}
