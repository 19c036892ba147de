/**
 * Messages between `pgark wal-archive` / `pgark wal-restore` (the short-lived clients PostgreSQL
 * runs) and the resident WAL daemon: one JSON object per line over a Unix socket, one request and
 * one reply per connection. Loaded on the hot path: types and tiny helpers only.
 *
 * A reply {ok: true} lets PostgreSQL recycle a segment, so neither side trusts the other on the
 * socket's word: the daemon opens with a challenge, the client's request carries its own nonce
 * and an HMAC (key: the daemon's secret file, readable only by the server's OS user) over both
 * nonces and the request, and the reply carries an HMAC over both nonces and the reply. An
 * impostor on the socket cannot answer, and a request from someone without the key is not served.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BarmanStoreArgs } from '../config/barman-env.js';
import type { CodecName } from '../codec/types.js';
import { StorageError, type StorageErrorKind } from '../storage/errors.js';
import { NotFoundError, PgarkError } from '../util/errors.js';

/** Which manifests to read and which object store in them to use. */
export interface ConfigRef {
  files: string[];
  secretsDir?: string;
  /** Cluster name when the manifests hold more than one. */
  cluster?: string;
  /** For restore: take externalClusters[source].barmanObjectStore instead of the Cluster's own. */
  source?: string;
  /** Instead of manifests (files empty): a store named as barman-cloud's drop-ins name it. */
  barman?: BarmanRef;
}

/**
 * What a barman-cloud drop-in's argv says about the store and the WAL settings. It holds no secret:
 * credentials come from the environment of the process that resolves it, and the daemon that does
 * is keyed by that environment (BARMAN_CREDENTIAL_ENV) and the argv.
 */
export interface BarmanRef {
  store: BarmanStoreArgs;
  compression: CodecName;
  encryption?: 'AES256' | 'aws:kms';
  tags?: Record<string, string>;
  historyTags?: Record<string, string>;
  /** Segments uploaded or prefetched at once by the daemon. */
  maxParallel: number;
}

export type WalRequest =
  /** Store this WAL file (absolute path); reply only once it is durably stored. */
  | { op: 'archive'; path: string; config: ConfigRef }
  /** Write WAL file `name` to `dest` (absolute), then keep prefetching the following segments. */
  | { op: 'restore'; name: string; dest: string; config: ConfigRef }
  /** The client served `name` from the restore spool; keep the prefetch window full. */
  | { op: 'restore-served'; name: string; config: ConfigRef }
  /** Before PostgreSQL starts: prefetch from `name` (included) and list the history files its first probe asks for. */
  | { op: 'restore-warm'; name: string; config: ConfigRef; segmentSize: number };

export type WalReply =
  | { ok: true; detail?: string }
  | {
      ok: false;
      message: string;
      hint?: string;
      exitCode: number;
      notFound?: boolean;
      /** What a failed storage request met (the drop-ins tell an unreachable store from other failures by it). */
      storageKind?: StorageErrorKind;
      /** The name is archived with other bytes (WalConflictError). */
      conflict?: boolean;
    };

export function encodeMessage(msg: Challenge | Sealed): string {
  return JSON.stringify(msg) + '\n';
}

/** The reply for a failed request: the error's message, hint and exit code (never a stack). */
export function errorReply(err: unknown): WalReply {
  if (err instanceof PgarkError) {
    const storageKind = err instanceof StorageError ? err.kind : undefined;
    // By name: archive.ts, which defines the class, is not loaded on the client's path.
    const conflict = err.name === 'WalConflictError';
    return { ok: false, message: err.message, hint: err.hint, exitCode: err.exitCode, notFound: err instanceof NotFoundError, ...(storageKind && { storageKind }), ...(conflict && { conflict }) };
  }
  return { ok: false, message: (err as Error)?.message ?? String(err), exitCode: 1 };
}

/** The daemon's first line on every connection. */
export interface Challenge {
  challenge: string;
}

/** A request or reply as JSON text (body), with the proof that its sender knows the key. */
export interface Sealed {
  body: string;
  proof: string;
  /** The client's nonce (requests only). */
  nonce?: string;
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The HMAC one side sends; the role keeps a client's proof from passing as the daemon's. */
export function prove(key: string, role: 'client' | 'daemon', challenge: string, nonce: string, body: string): string {
  return createHmac('sha256', key).update(`pgark-wal ${role}\n${challenge}\n${nonce}\n${body}`).digest('hex');
}

export function proofMatches(expected: string, got: unknown): boolean {
  if (typeof got !== 'string' || got.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(got));
}
