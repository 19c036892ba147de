/**
 * The one retry policy of the storage layer: which failures are worth retrying and how long to
 * wait (exponential backoff with full jitter, capped). Drivers plug it into their SDK's request
 * pipeline (s3.ts, azure.ts) so that every request, including each part of a multipart upload,
 * is retried the same way; the SDKs' own retry loops are switched off.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorFacts } from './errors.js';
import { setting } from '../util/options.js';

export interface RetryPolicy {
  /** Total tries including the first. */
  maxAttempts: number;
  /** Cap of the first backoff window; doubles on every retry. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * PGARK_STORAGE_MAX_ATTEMPTS (the option table says: a whole number from 1 to 100). Number() alone
 * would turn "six" into NaN, which no attempt count ever reaches, and "0" or "-1" into a policy
 * that gives up before the first retry.
 */
export function storageMaxAttempts(env: NodeJS.ProcessEnv = process.env): number {
  return setting('storageMaxAttempts', env);
}

export const DEFAULT_RETRY: RetryPolicy = {
  get maxAttempts() {
    return storageMaxAttempts();
  },
  baseDelayMs: 100,
  maxDelayMs: 8000,
};

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServerBusy',
  'OperationTimedOut',
  'InternalError',
  'ServiceUnavailable',
  'REQUEST_SEND_ERROR',
  // S3: another conditional write to the key is in flight; AWS says to retry.
  'ConditionalRequestConflict',
  // The request's signing time is too far from the server's clock. The AWS SDK resets its clock
  // offset from the failed response's Date header, so the retry is signed with the server's time.
  'RequestTimeTooSkewed',
  'RequestExpired',
  'RequestInTheFuture',
]);

/**
 * Codes that mean a clock skew only sometimes: a wrong key gives them too, so, as in the AWS SDK,
 * they are retried only when the SDK found the skew (and corrected it) on this very response.
 */
const SKEW_OR_AUTH_CODES = new Set(['SignatureDoesNotMatch', 'InvalidSignatureException', 'AccessDenied', 'AccessDeniedException', 'AuthFailure']);

/** Status codes that are not 5xx but still mean "try again later". */
const TRANSIENT_STATUS = new Set([408, 429]);

/** True for failures that another try may cure: 5xx, 408/429, throttling, resets, timeouts. */
export function isTransient(err: unknown): boolean {
  if ((err as { name?: string })?.name === 'AbortError') return false;
  const { codes, status } = errorFacts(err);
  if (status !== undefined && (status >= 500 || TRANSIENT_STATUS.has(status))) return true;
  if (codes.some((c) => TRANSIENT_CODES.has(c))) return true;
  const e = err as { message?: unknown; $metadata?: { clockSkewCorrected?: boolean } };
  if (codes.includes('InvalidSignatureException') && String(e?.message).includes('Signature expired')) return true;
  return e?.$metadata?.clockSkewCorrected === true && codes.some((c) => SKEW_OR_AUTH_CODES.has(c));
}

/** Same test for an HTTP status alone (a response that did not throw). */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || TRANSIENT_STATUS.has(status);
}

/** Delay before retry number `retry` (1-based): uniform in [0, min(max, base x 2^(retry-1))]. */
export function backoffDelay(retry: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(Math.random() * ceiling);
}

export async function backoff(retry: number, signal?: AbortSignal, policy: RetryPolicy = DEFAULT_RETRY): Promise<void> {
  await sleep(backoffDelay(retry, policy), undefined, { signal });
}

/** Runs a replayable operation, retrying transient failures per the policy. */
export async function withRetry<T>(op: (attempt: number) => Promise<T>, opts: { signal?: AbortSignal; policy?: RetryPolicy } = {}): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (e) {
      if (attempt >= policy.maxAttempts || !isTransient(e) || opts.signal?.aborted) throw e;
      await backoff(attempt, opts.signal, policy);
    }
  }
}
