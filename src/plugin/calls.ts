/**
 * How a plugin method answers: handlers are plain async functions, wrapped by unary() into
 * grpc-js handlers, and every failure becomes a gRPC status CNPG acts on (the codes
 * plugin-barman-cloud uses, cnpg-i-plugin.md §1.2 "Errors"): NOT_FOUND for a WAL file the
 * archive lacks, OUT_OF_RANGE for one a prefetch has just found beyond the end of the archive, INVALID_ARGUMENT for a malformed request, UNAVAILABLE when the store cannot be
 * reached (worth retrying), FAILED_PRECONDITION when configuration or credentials cannot be read
 * or are rejected, the archive is not the empty one a new cluster needs or WAL archiving is
 * broken so a backup cannot be usable, INTERNAL otherwise. Messages are pgark's own error texts with their hint,
 * which never carry a secret value.
 */
import { status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { WalArchivingError } from '../backup/wait-wal.js';
import { StorageError } from '../storage/errors.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { ArchiveNotEmptyError } from '../wal/empty-check.js';

/** The request itself is malformed (a WAL name, a path, the Cluster JSON): the caller must change it. */
export class InvalidRequestError extends PgarkError {
  constructor(message: string, hint?: string) {
    super(message, 2, hint);
  }
}

/** A prefetch has just found the archive ending before this WAL file (end-of-archive.ts). */
export class OutOfRangeError extends PgarkError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** The gRPC code for an error thrown while serving a call. */
export function statusCodeOf(err: unknown): status {
  if (err instanceof InvalidRequestError) return status.INVALID_ARGUMENT;
  if (err instanceof OutOfRangeError) return status.OUT_OF_RANGE;
  if (err instanceof NotFoundError) return status.NOT_FOUND;
  if (err instanceof StorageError) {
    if (err.kind === 'unreachable') return status.UNAVAILABLE;
    if (err.kind === 'auth' || err.kind === 'not-found-bucket') return status.FAILED_PRECONDITION;
    return status.INTERNAL;
  }
  // Configuration the plugin needs (ObjectStore, Secrets, plugin parameters) is missing or wrong,
  // the target archive already holds another cluster's WAL ("Expected empty archive"), or a
  // backup cannot be usable because the server's WAL archiving is broken: CNPG records any code
  // in Backup.status.error as it is, and this one tells the user the state must be fixed first.
  if (err instanceof UserError || err instanceof ArchiveNotEmptyError || err instanceof WalArchivingError) return status.FAILED_PRECONDITION;
  return status.INTERNAL;
}

export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = err as Error;
  const hint = err instanceof PgarkError && err.hint ? ` (hint: ${err.hint})` : '';
  return { code: statusCodeOf(err), details: `${e?.message ?? String(err)}${hint}`, metadata: new Metadata() };
}

/** A grpc-js unary handler from an async function; `method` names the call in the log. */
export function unary<Req, Res>(method: string, fn: (request: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    fn(call.request).then(
      (response) => callback(null, response),
      (err: unknown) => {
        const se = toServiceError(err);
        const level = se.code === status.NOT_FOUND || se.code === status.OUT_OF_RANGE ? 'debug' : 'warn';
        logger()[level]({ method, code: status[se.code!], err: se.details }, 'plugin call failed');
        callback(se);
      },
    );
  };
}
