/**
 * s3rver (a local S3 server) on a free loopback port for tests: path-style addressing,
 * credentials S3RVER/S3RVER, any region. With `tls`, it serves https with a throw-away
 * self-signed certificate whose subjectAltName has IP:127.0.0.1 (pgBackRest only speaks https).
 *
 * Clients reach s3rver through a strict front (s3-front.ts) that verifies every SigV4 signature,
 * refuses the AWS SDK's newer checksum encodings and emulates If-None-Match, which s3rver itself
 * does not; `withFront()` adds another front with bucket rules (Object Lock, required SSE headers)
 * over the same data. `port`/`endpoint` are the front's; `backendPort` is s3rver's own.
 *
 * Other s3rver 3.7.1 quirks (real S3 differs): it ignores x-amz-tagging on PUT; "Range: bytes=0-0"
 * returns the whole object; a delimiter listing misses common prefixes whose objects all sit two
 * or more levels below the listed prefix; and it encrypts continuation tokens with DES, which
 * OpenSSL 3 only offers through its legacy provider (enabled below, or every listing past one
 * page answers 500).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './tmp.js';
import { startServerProcess } from './server-process.js';
import { startS3Front, type FrontRules } from './s3-front.js';
import { startShapedProxyProcess, type WanShape } from './proxy.js';

export interface S3rver {
  /** The verifying front's port. */
  port: number;
  /** s3rver's own port, behind the front. */
  backendPort: number;
  /** http(s)://127.0.0.1:PORT of the front — pass as endpointURL. */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  tls: boolean;
  /** PEM of the self-signed certificate (tls only): the endpointCA. */
  caPem?: string;
  /** Path of that PEM on disk (for AWS_CA_BUNDLE or pgBackRest). */
  caFile?: string;
  dataDir: string;
  /** s3rver's process id (benchmarks read its CPU time from /proc). */
  pid: number;
  /** The same bucket through another front applying `rules`; its stop() stops only that front. */
  withFront(rules: FrontRules): Promise<S3rver>;
  stop(): Promise<void>;
}

export interface S3rverOptions {
  /** Bucket created at start (default "pgark"). */
  bucket?: string;
  tls?: boolean;
  /** Rules of the front every client goes through. */
  rules?: FrontRules;
  /**
   * false: clients talk to s3rver itself. Benchmarks measure the tools, not the verifying front
   * (one more Node process and a second hop on a 2-core machine); tests always keep the front.
   */
  front?: boolean;
  /** Put a shaping proxy (latency, bandwidth) in front, so every client reaches the store as over a WAN. */
  wan?: WanShape;
}

/** Generates a self-signed certificate for 127.0.0.1/localhost in dir; returns the key and cert paths. */
export function selfSignedCert(dir: string): { key: string; cert: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '7', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { stdio: 'ignore' },
  );
  return { key, cert };
}

export async function startS3rver(opts: S3rverOptions = {}): Promise<S3rver> {
  const bucket = opts.bucket ?? 'pgark';
  const tls = opts.tls ?? false;
  const dir = scratchDir('s3rver');
  const dataDir = join(dir.path, 'data');
  const cert = tls ? selfSignedCert(dir.path) : undefined;
  const server = await startServerProcess(
    's3rver',
    (port) => ['-d', dataDir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket, ...(cert ? ['--key', cert.key, '--cert', cert.cert] : [])],
    's3rver',
    { NODE_OPTIONS: '--openssl-legacy-provider' },
  ).catch((e) => {
    dir.cleanup();
    throw e;
  });
  const credentials = { S3RVER: 'S3RVER' };
  const viaFront = async (rules: FrontRules | undefined, stopBackend: boolean): Promise<S3rver> => {
    const verifying = rules ? await startS3Front({ backendPort: server.port, tls: cert, credentials, rules }) : { port: server.port, stop: async () => undefined };
    const shaping = stopBackend && opts.wan ? await startShapedProxyProcess(verifying.port, opts.wan) : undefined;
    const front = {
      port: shaping?.port ?? verifying.port,
      stop: async () => {
        await shaping?.stop();
        await verifying.stop();
      },
    };
    return {
      port: front.port,
      backendPort: server.port,
      endpoint: `${tls ? 'https' : 'http'}://127.0.0.1:${front.port}`,
      bucket,
      accessKeyId: 'S3RVER',
      secretAccessKey: credentials.S3RVER,
      region: 'us-east-1',
      tls,
      caPem: cert ? readFileSync(cert.cert, 'utf8') : undefined,
      caFile: cert?.cert,
      dataDir,
      pid: server.child.pid!,
      withFront: (more) => viaFront(more, false),
      stop: async () => {
        await front.stop();
        if (!stopBackend) return;
        await server.stop();
        dir.cleanup();
      },
    };
  };
  return viaFront(opts.front === false ? undefined : (opts.rules ?? {}), true).catch(async (e) => {
    await server.stop();
    dir.cleanup();
    throw e;
  });
}
