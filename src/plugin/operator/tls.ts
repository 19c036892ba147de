/**
 * Mutual TLS for the operator plugin's TCP listener, as CNPG expects of a plugin behind a
 * Service: TLS 1.3 at least, and a client certificate required and verified against the given CA.
 * grpc-js's createSsl() has no way to set a minimum version, so the credentials are built on its
 * public ServerCredentials constructor, whose two option objects go to http2.createSecureServer.
 */
import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { UserError } from '../../util/errors.js';

export interface MtlsFiles {
  serverCert: string;
  serverKey: string;
  clientCa: string;
}

class MtlsServerCredentials extends ServerCredentials {
  constructor(cert: Buffer, key: Buffer, ca: Buffer) {
    super({ requestCert: true, rejectUnauthorized: true }, { cert, key, ca, minVersion: 'TLSv1.3' });
  }
  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

export function mtlsCredentials(files: MtlsFiles): ServerCredentials {
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UserError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 'mount the TLS Secret made by `pgark plugin certs` (tls.crt, tls.key, ca.crt)');
    }
  };
  return new MtlsServerCredentials(read('--server-cert', files.serverCert), read('--server-key', files.serverKey), read('--client-ca', files.clientCa));
}

/** `--listen` as grpc-js takes it: ":9090" (Go's form, as plugin-barman-cloud's --server-address) means every IPv4 address. */
export function listenAddress(listen: string): string {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new UserError(`--listen "${listen}" is not HOST:PORT or :PORT`, 'e.g. --listen :9090');
  return `${m[1] || '0.0.0.0'}:${m[2]}`;
}
