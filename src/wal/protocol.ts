/**
 * Messages between `pgark wal-archive` / `pgark wal-restore` (the short-lived clients PostgreSQL
 * runs) and the resident WAL daemon: one JSON object per line over a Unix socket, one request and
 * one reply per connection. Loaded on the hot path: types and tiny helpers only.
 */
import { NotFoundError, PgarkError } from '../util/errors.js';

/** Which manifests to read and which object store in them to use. */
export interface ConfigRef {
  files: string[];
  secretsDir?: string;
  /** Cluster name when the manifests hold more than one. */
  cluster?: string;
  /** For restore: take externalClusters[source].barmanObjectStore instead of the Cluster's own. */
  source?: string;
}

export type WalRequest =
  /** Store this WAL file (absolute path); reply only once it is durably stored. */
  | { op: 'archive'; path: string; config: ConfigRef }
  /** Write WAL file `name` to `dest` (absolute), then keep prefetching the following segments. */
  | { op: 'restore'; name: string; dest: string; config: ConfigRef }
  /** The client served `name` from the restore spool; keep the prefetch window full. */
  | { op: 'restore-served'; name: string; config: ConfigRef };

export type WalReply =
  | { ok: true; detail?: string }
  | { ok: false; message: string; hint?: string; exitCode: number; notFound?: boolean };

export function encodeMessage(msg: WalRequest | WalReply): string {
  return JSON.stringify(msg) + '\n';
}

/** The reply for a failed request: the error's message, hint and exit code (never a stack). */
export function errorReply(err: unknown): WalReply {
  if (err instanceof PgarkError) return { ok: false, message: err.message, hint: err.hint, exitCode: err.exitCode, notFound: err instanceof NotFoundError };
  return { ok: false, message: (err as Error)?.message ?? String(err), exitCode: 1 };
}
