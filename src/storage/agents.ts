/**
 * Keep-alive HTTP(S) agents shared by every request of one store: WAL archiving calls put()
 * hundreds of times a minute, and a TLS handshake per object would dominate. endpointCA is
 * added to Node's default trust store (not substituted), so public endpoints keep working. That
 * trust store is built once per store: given as `ca`, Node parses all of its ~140 certificates again
 * for every new connection (35 ms of CPU each, about one per WAL segment a restore fetched).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';

export interface Agents {
  http: HttpAgent;
  https: HttpsAgent;
  destroy(): void;
}

/** Sockets per store; bounds parallel requests (multipart parts, parallel WAL pushes). */
const MAX_SOCKETS = 64;

export function keepAliveAgents(endpointCA?: string): Agents {
  const http = new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  const https = new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS, ...(endpointCA ? { secureContext: createSecureContext({ ca: [...rootCertificates, endpointCA] }) } : {}) });
  return {
    http,
    https,
    destroy: () => {
      http.destroy();
      https.destroy();
    },
  };
}
