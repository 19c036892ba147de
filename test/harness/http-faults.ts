/**
 * An HTTP-aware loopback proxy in front of s3rver or Azurite that injects the failures real object
 * stores produce: throttling answers (S3 SlowDown, Azure ServerBusy), connections reset while a
 * request or a response body flows, GET bodies cut short of their Content-Length, a store that
 * accepts a request and then sends nothing, and latency spikes. The TCP proxy (proxy.ts) cannot do
 * these because it does not know where one request ends.
 *
 * Requests are forwarded byte-for-byte with their Host header, so signatures stay valid (Azurite
 * checks Shared Key signatures; s3rver checks only the key id).
 */
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenLoopback } from './proxy.js';

export type HttpFault =
  /** Answer with this status and a provider-style error body; the request never reaches the store. */
  | { kind: 'status'; status: number; code: string }
  /** Forward the request, but reset the connection once `afterBytes` of its body went through (or at its end, before any answer). */
  | { kind: 'reset-request'; afterBytes: number }
  /** Forward; reset the connection after `afterBytes` of the response body. */
  | { kind: 'reset-response'; afterBytes: number }
  /** Forward; send the store's headers (Content-Length included) but only `keepBytes` of the body, then close cleanly. */
  | { kind: 'truncate'; keepBytes: number }
  /** Accept the request and send nothing for `ms`, then drop the connection. */
  | { kind: 'hang'; ms: number }
  /** Forward after `ms`. */
  | { kind: 'delay'; ms: number };

export interface RequestView {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface FaultRule {
  match(req: RequestView): boolean;
  fault: HttpFault;
  /** How many matching requests get the fault (Infinity for all). */
  times: number;
  /** Chance that a matching request is hit (default 1). */
  probability?: number;
}

export interface HttpFaultProxy {
  port: number;
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Requests seen so far. */
  readonly requests: number;
  /** Faults injected so far. */
  readonly injected: number;
  add(rule: FaultRule): void;
  /** Removes every rule (requests in flight keep their fault). */
  clear(): void;
  close(): Promise<void>;
}

/** Common request shapes of both providers. */
export const matchers = {
  any: () => true,
  get: (r: RequestView) => r.method === 'GET' && !/[?&](list-type|comp=list|restype)/.test(r.url),
  put: (r: RequestView) => r.method === 'PUT' || (r.method === 'POST' && !/[?&]delete/.test(r.url)),
  /** S3 CompleteMultipartUpload, Azure Put Block List: the request that makes a multipart object exist. */
  complete: (r: RequestView) => (r.method === 'POST' && /[?&]uploadId=/.test(r.url)) || (r.method === 'PUT' && /[?&]comp=blocklist/.test(r.url)),
  /** Keys under a path fragment, e.g. "/base/" or "/wals/". */
  under: (fragment: string) => (r: RequestView) => decodeURIComponent(r.url.split('?')[0]).includes(fragment),
};

function errorBody(code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`;
}

export async function startHttpFaultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<HttpFaultProxy> {
  let rules: FaultRule[] = [];
  let requests = 0;
  let injected = 0;
  const sockets = new Set<Socket>();

  const pick = (req: RequestView): HttpFault | undefined => {
    for (const rule of rules) {
      if (rule.times <= 0 || !rule.match(req)) continue;
      if (rule.probability !== undefined && Math.random() >= rule.probability) continue;
      rule.times--;
      injected++;
      return rule.fault;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, fault: HttpFault | undefined) => {
    const upstream = request({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (fault?.kind === 'reset-response' || fault?.kind === 'truncate') {
          const limit = fault.kind === 'truncate' ? fault.keepBytes : fault.afterBytes;
          if (sent + chunk.length > limit) {
            res.write(chunk.subarray(0, Math.max(0, limit - sent)));
            up.destroy();
            if (fault.kind === 'truncate') res.socket?.end();
            else res.socket?.destroy();
            return;
          }
        }
        sent += chunk.length;
        if (!res.write(chunk)) {
          up.pause();
          res.once('drain', () => up.resume());
        }
      });
      up.on('end', () => res.end());
      up.on('error', () => res.socket?.destroy());
    });
    upstream.on('error', () => res.socket?.destroy());
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (fault?.kind === 'reset-request' && received > fault.afterBytes) {
        upstream.destroy();
        req.socket.destroy();
        return;
      }
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (fault?.kind === 'reset-request') {
        // The whole body reached the store, but the client never learns the outcome.
        upstream.end();
        upstream.once('response', () => req.socket.destroy());
        return;
      }
      upstream.end();
    });
  };

  const server = createServer((req, res) => {
    requests++;
    const fault = pick({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    if (fault?.kind === 'status') {
      req.resume();
      req.on('end', () => {
        const body = errorBody(fault.code);
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'x-ms-error-code': fault.code, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if (fault?.kind === 'hang') {
      const timer = setTimeout(() => req.socket.destroy(), fault.ms);
      req.socket.once('close', () => clearTimeout(timer));
      req.resume();
      return;
    }
    if (fault?.kind === 'delay') {
      req.pause();
      setTimeout(() => {
        req.resume();
        forward(req, res, undefined);
      }, fault.ms);
      return;
    }
    forward(req, res, fault);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const port = await listenLoopback(server);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get injected() {
      return injected;
    },
    add: (rule) => {
      rules.push(rule);
    },
    clear: () => {
      rules = [];
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
