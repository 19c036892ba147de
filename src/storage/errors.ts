/**
 * Storage failures, one class for every driver. A message names the operation, the key and the
 * store's displayUrl (credentials removed) and never a secret; `kind` lets `pgark check` tell a
 * wrong key from a missing bucket from an unreachable endpoint without parsing provider codes.
 */
import { NotFoundError, PgarkError } from '../util/errors.js';

export type StorageErrorKind = 'auth' | 'not-found-bucket' | 'unreachable' | 'other';

export class StorageError extends PgarkError {
  constructor(
    readonly operation: string,
    readonly key: string | undefined,
    readonly displayUrl: string,
    readonly kind: StorageErrorKind,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}${key !== undefined ? ` "${key}"` : ''} on ${displayUrl} failed: ${describeKind(kind)}${detail}`, 1, hintFor(kind));
    // Kept for debugging but not enumerable, so loggers that copy own properties skip the SDK's request details.
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false });
  }
}

function describeKind(kind: StorageErrorKind): string {
  switch (kind) {
    case 'auth':
      return 'credentials rejected: ';
    case 'not-found-bucket':
      return 'bucket/container does not exist: ';
    case 'unreachable':
      return 'endpoint unreachable: ';
    default:
      return '';
  }
}

function hintFor(kind: StorageErrorKind): string | undefined {
  switch (kind) {
    case 'auth':
      return 'check the access key / secret key, storage key or SAS token in the credentials Secret';
    case 'not-found-bucket':
      return 'create the bucket/container first, or fix the first path element of destinationPath';
    case 'unreachable':
      return 'check endpointURL / destinationPath host and port, DNS, firewall and endpointCA';
    default:
      return undefined;
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'TimeoutError',
  'RequestTimeout',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'InvalidAuthenticationInfo',
  'NoAuthenticationInformation',
  'CredentialUnavailableError',
  'CredentialsProviderError',
  'AuthenticationRequiredError',
]);

const MISSING_BUCKET_CODES = new Set(['NoSuchBucket', 'ContainerNotFound', 'ContainerBeingDeleted']);

/** Provider error codes, HTTP status and errno gathered from an SDK or Node error and its causes. */
export function errorFacts(err: unknown): { codes: string[]; status?: number } {
  const codes: string[] = [];
  let status: number | undefined;
  const seen = new Set<unknown>();
  for (let e: any = err; e && typeof e === 'object' && !seen.has(e); e = e.cause) {
    seen.add(e);
    for (const c of [e.code, e.name, e.Code, e.errno, e.details?.errorCode]) if (typeof c === 'string') codes.push(c);
    status ??= e.$metadata?.httpStatusCode ?? e.statusCode ?? e.$response?.statusCode;
    if (Array.isArray(e.errors)) for (const inner of e.errors) codes.push(...errorFacts(inner).codes);
  }
  return { codes, status };
}

/**
 * What kind of failure a storage error is: the config helper's `pgark check` prints a distinct
 * message for each. Works on StorageError and on raw SDK / Node errors.
 */
export function classifyStorageError(err: unknown): StorageErrorKind {
  if (err instanceof StorageError) return err.kind;
  const { codes, status } = errorFacts(err);
  if (codes.some((c) => MISSING_BUCKET_CODES.has(c))) return 'not-found-bucket';
  if (codes.some((c) => AUTH_CODES.has(c)) || status === 401 || status === 403) return 'auth';
  if (codes.some((c) => NETWORK_CODES.has(c))) return 'unreachable';
  return 'other';
}

/** Short, secret-free description of an underlying error for a StorageError message. */
export function errorDetail(err: unknown): string {
  const { codes, status } = errorFacts(err);
  const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
  const code = codes.find((c) => c !== 'Error' && !msg.includes(c));
  return [code, status ? `HTTP ${status}` : undefined, msg].filter(Boolean).join(' ').slice(0, 300);
}

/** Wraps any failure of `operation` on `key` as a StorageError (a StorageError passes through). */
export function storageError(operation: string, key: string | undefined, displayUrl: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  return new StorageError(operation, key, displayUrl, classifyStorageError(err), errorDetail(err), { cause: err });
}

/**
 * The error of a failed read: NotFoundError when the object is missing (the provider's code for
 * it, or a bare 404 that is not about the bucket/container), else a StorageError.
 */
export function readFailure(err: unknown, key: string, displayUrl: string, codes: { missingObject: string; missingContainer: string }): Error {
  const facts = errorFacts(err);
  if (facts.codes.includes(codes.missingObject) || (facts.status === 404 && !facts.codes.includes(codes.missingContainer))) {
    return new NotFoundError(`object "${key}" not found in ${displayUrl}`);
  }
  return storageError('get', key, displayUrl, err);
}
