/**
 * A strict S3-compatible front for s3rver: every request is checked the way a careful
 * S3-compatible store checks it, then proxied to s3rver. s3rver itself only checks that the access
 * key id exists, ignores If-None-Match and knows nothing of Object Lock or bucket policies, so
 * without this front a client that signs wrongly, or sends the AWS SDK's newer checksum encodings
 * (which broke many S3-compatible stores with boto3 1.36), would pass every test.
 *
 * Checks, in order:
 *  - SigV4 header auth, recomputed with the AWS SDK's own signer (@smithy/signature-v4) and the
 *    known secret: 403 InvalidAccessKeyId / SignatureDoesNotMatch;
 *  - aws-chunked bodies, trailers and any x-amz-checksum-* / x-amz-sdk-checksum-algorithm header:
 *    400 InvalidArgument, as a store that predates them answers;
 *  - the body against x-amz-content-sha256 (unless UNSIGNED-PAYLOAD) and Content-MD5:
 *    400 XAmzContentSHA256Mismatch / BadDigest;
 *  - rules: `requireHeaders` (a bucket policy demanding e.g. x-amz-server-side-encryption on every
 *    object write: 403 AccessDenied) and `refuseDeletes` (Object Lock: each key of a DeleteObjects
 *    answered AccessDenied, a single DELETE 403);
 *  - `If-None-Match: *` on PutObject and CompleteMultipartUpload: 412 PreconditionFailed when the
 *    key exists, serialised per key so racing creators get exactly one winner.
 *
 * It runs as its own process (this file is also its entry point), not inside the test process: tests
 * run barman-cloud with spawnSync, which would block an in-process front and deadlock.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { startModuleProcess } from './server-process.js';

export interface FrontRules {
  /** Headers every object write (PutObject, CreateMultipartUpload) must carry, with these values. */
  requireHeaders?: Record<string, string>;
  /** Refuse every delete with AccessDenied, as Object Lock does. */
  refuseDeletes?: boolean;
}

export interface FrontConfig {
  backendPort: number;
  /** Serve and reach the backend over https with this key and certificate. */
  tls?: { key: string; cert: string };
  credentials: Record<string, string>;
  rules: FrontRules;
}

export interface S3Front {
  port: number;
  stop(): Promise<void>;
}

/** Starts a front process for `config`; resolves once it listens. */
export function startS3Front(config: FrontConfig): Promise<S3Front> {
  return startModuleProcess(fileURLToPath(import.meta.url), 'PGARK_S3_FRONT', config, 'S3 front');
}

/** The hash class the SDK signer expects, on Node's crypto. */
class Sha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

const bytes = (d: SourceData): string | Uint8Array => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/** Decodes a raw query string without turning '+' into a space, as SigV4 canonicalisation expects. */
function parseQuery(raw: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const pair of raw.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    const prev = out[key];
    out[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

async function verifySignature(req: IncomingMessage, body: Buffer, credentials: Record<string, string>): Promise<void> {
  const m = AUTH_RE.exec(header(req, 'authorization') ?? '');
  if (!m) throw new Refusal(403, 'AccessDenied', 'requests must carry a SigV4 Authorization header');
  const [, accessKeyId, , region, signedList, signature] = m;
  const secretAccessKey = credentials[accessKeyId];
  if (secretAccessKey === undefined) throw new Refusal(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const amzDate = header(req, 'x-amz-date') ?? '';
  const signingDate = new Date(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (Number.isNaN(signingDate.getTime())) throw new Refusal(403, 'AccessDenied', 'missing or malformed x-amz-date');
  const signedHeaders = signedList.split(';');
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(req, name);
    if (value === undefined) throw new Refusal(403, 'SignatureDoesNotMatch', `signed header ${name} is missing`);
    headers[name] = value;
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service: 's3', sha256: Sha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign(
    { method: req.method!, protocol: 'http:', hostname: '127.0.0.1', path: q < 0 ? url : url.slice(0, q), query: q < 0 ? {} : parseQuery(url.slice(q + 1)), headers, body },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  if (expected !== signature) throw new Refusal(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
}

function refuseNewChecksums(req: IncomingMessage): void {
  const encoding = header(req, 'content-encoding') ?? '';
  const sha = header(req, 'x-amz-content-sha256') ?? '';
  if (/aws-chunked/i.test(encoding) || sha.startsWith('STREAMING-')) throw new Refusal(400, 'InvalidArgument', 'aws-chunked encoding is not supported');
  for (const name of Object.keys(req.headers)) {
    if (name === 'x-amz-trailer' || name === 'x-amz-decoded-content-length' || name === 'x-amz-sdk-checksum-algorithm' || name.startsWith('x-amz-checksum-')) {
      throw new Refusal(400, 'InvalidArgument', `unsupported header ${name}`);
    }
  }
}

function verifyBody(req: IncomingMessage, body: Buffer): void {
  const sha = header(req, 'x-amz-content-sha256');
  if (sha !== undefined && sha !== 'UNSIGNED-PAYLOAD' && createHash('sha256').update(body).digest('hex') !== sha) {
    throw new Refusal(400, 'XAmzContentSHA256Mismatch', 'The provided x-amz-content-sha256 header does not match what was computed.');
  }
  const md5 = header(req, 'content-md5');
  if (md5 !== undefined && createHash('md5').update(body).digest('base64') !== md5) {
    throw new Refusal(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
}

function xmlError(res: ServerResponse, method: string | undefined, e: Refusal): void {
  res.writeHead(e.status, { 'content-type': 'application/xml' });
  res.end(method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${e.message}</Message></Error>`);
}

const xmlUnescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function serve(config: FrontConfig): Promise<void> {
  const { rules } = config;
  const transport = config.tls ? https : http;
  const agent = new transport.Agent({ keepAlive: true, rejectUnauthorized: false } as https.AgentOptions);
  /** A tail per key, so conditional creates of one key run one at a time. */
  const keyLocks = new Map<string, Promise<void>>();
  const [accessKeyId, secretAccessKey] = Object.entries(config.credentials)[0];
  const ownSigner = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false });

  const forward = (method: string, path: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const out = transport.request({ host: '127.0.0.1', port: config.backendPort, method, path, headers, agent }, resolve);
      out.on('error', reject);
      out.end(body);
    });

  const exists = async (path: string): Promise<boolean> => {
    const signed = await ownSigner.sign({ method: 'HEAD', protocol: 'http:', hostname: '127.0.0.1', path, query: {}, headers: { host: `127.0.0.1:${config.backendPort}` } });
    const res = await forward('HEAD', path, signed.headers, Buffer.alloc(0));
    res.resume();
    return res.statusCode === 200;
  };

  const withKeyLock = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const before = keyLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    keyLocks.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (keyLocks.get(key) === tail) keyLocks.delete(key);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method!;
    const url = req.url ?? '/';
    const [path, query = ''] = url.split('?', 2);
    const params = parseQuery(query);
    refuseNewChecksums(req);
    await verifySignature(req, body, config.credentials);
    verifyBody(req, body);

    const objectWrite = (method === 'PUT' && !('partNumber' in params) && header(req, 'x-amz-copy-source') === undefined) || (method === 'POST' && 'uploads' in params);
    if (objectWrite) {
      for (const [name, value] of Object.entries(rules.requireHeaders ?? {})) {
        if (header(req, name) !== value) throw new Refusal(403, 'AccessDenied', `bucket policy requires ${name}: ${value}`);
      }
    }
    if (rules.refuseDeletes && method === 'DELETE' && !('uploadId' in params)) throw new Refusal(403, 'AccessDenied', 'Access Denied because object protected by object lock.');
    if (rules.refuseDeletes && method === 'POST' && 'delete' in params) {
      const keys = [...body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((k) => xmlUnescape(k[1]));
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>${keys
          .map((k) => `<Error><Key>${xmlEscape(k)}</Key><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error>`)
          .join('')}</DeleteResult>`,
      );
      return;
    }

    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: `127.0.0.1:${config.backendPort}`, 'content-length': body.length };
    delete headers.expect;
    delete headers['transfer-encoding'];
    delete headers['if-none-match'];
    const send = async () => {
      const upstream = await forward(method, url, headers, body);
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    };
    const conditional = header(req, 'if-none-match') === '*' && ((method === 'PUT' && !('partNumber' in params)) || (method === 'POST' && 'uploadId' in params));
    if (!conditional) return send();
    await withKeyLock(path, async () => {
      if (await exists(path)) throw new Refusal(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      await send();
      // The lock holds until s3rver has answered, so the next creator's HEAD sees this object.
      await new Promise((resolve) => res.once('finish', resolve).once('close', resolve));
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) return res.destroy();
      xmlError(res, req.method, e instanceof Refusal ? e : new Refusal(500, 'InternalError', (e as Error).message));
    });
  };
  const server = config.tls ? https.createServer({ key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) }, onRequest) : http.createServer(onRequest);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

if (process.env.PGARK_S3_FRONT && process.argv[1] === fileURLToPath(import.meta.url)) {
  await serve(JSON.parse(process.env.PGARK_S3_FRONT) as FrontConfig);
}
