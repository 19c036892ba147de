/**
 * Keep-alive HTTP(S) agents shared by every request of one store: WAL archiving calls put()
 * hundreds of times a minute, and a TLS handshake per object would dominate. endpointCA is
 * added to Node's default trust store (not substituted), so public endpoints keep working.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';

export interface Agents {
  http: HttpAgent;
  https: HttpsAgent;
  destroy(): void;
}

/** Sockets per store; bounds parallel requests (multipart parts, parallel WAL pushes). */
const MAX_SOCKETS = 64;

export function keepAliveAgents(endpointCA?: string): Agents {
  const http = new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  const https = new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS, ...(endpointCA ? { ca: [...rootCertificates, endpointCA] } : {}) });
  return {
    http,
    https,
    destroy: () => {
      http.destroy();
      https.destroy();
    },
  };
}
