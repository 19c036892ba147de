/**
 * The object store and WAL settings a wal-archive / wal-restore request works with, read from the
 * CNPG manifests: the Cluster's own store (spec.backup.barmanObjectStore or its plugin entry's
 * ObjectStore), or for recovery an external cluster's (`--source NAME`, serverName defaulting to
 * NAME, as CNPG does); or, for the barman-cloud drop-ins, from their argv and environment
 * (config/barman-env.ts).
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { clusterObjectStore, externalClusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { applyAwsProfile, resolveBarmanStore } from '../config/barman-env.js';
import type { Encryption, ResolvedObjectStore } from '../config/types.js';
import type { CodecName } from '../codec/types.js';
import type { AgeKeys } from '../codec/age.js';
import { StorageError } from '../storage/errors.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import type { BarmanRef, ConfigRef } from './protocol.js';
import { SKIP_EMPTY_CHECK_ANNOTATION } from '../util/cnpg.js';

export interface WalTarget {
  store: ObjectStore;
  serverName: string;
  compression: CodecName;
  /** Segments transferred at once (wal.maxParallel, default 1 as in CNPG). */
  maxParallel: number;
  tags?: Record<string, string>;
  historyTags?: Record<string, string>;
  encryption?: Encryption;
  /** Client-side age keys: objects are encrypted for their recipients and read with their identities. */
  age?: AgeKeys;
  /** The Cluster carries cnpg.io/skipEmptyWalArchiveCheck: enabled. */
  skipEmptyCheck: boolean;
  /** The manifest field that sets serverName, for the empty-archive hint. */
  serverNameField?: string;
  /** Safe to print: store URL and server name. */
  description: string;
}

/**
 * What a ConfigRef resolves to right now: a fingerprint of the settings and credentials read from
 * the manifests and Secrets (a hash, never printed), and how to open a target with them.
 */
export interface WalTargetSource {
  fingerprint: string;
  open(): Promise<WalTarget>;
}

/** Reads the manifests and resolves the credentials, without connecting to anything. */
export async function resolveWalTarget(ref: ConfigRef): Promise<WalTargetSource> {
  if (ref.barman) return barmanWalTarget(ref.barman);
  if (ref.files.length === 0) {
    throw new UserError('no manifest given', 'pass -f /path/to/cluster.yaml or set PGARK_CONFIG');
  }
  const ctx = await loadContext({ files: ref.files, secretsDir: ref.secretsDir });
  const cluster = findCluster(ctx.manifests, ref.cluster);
  const resolved = ref.source ? await externalClusterObjectStore(ctx, cluster, ref.source) : await clusterObjectStore(ctx, cluster);
  return walTargetSource(resolved, cluster.metadata.annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] === 'enabled');
}

/** The WalTargetSource of an object store resolved elsewhere (the CNPG-I plugin resolves ObjectStore resources). */
export function walTargetSource(resolved: ResolvedObjectStore, skipEmptyCheck: boolean): WalTargetSource {
  const fingerprint = createHash('sha256').update(JSON.stringify([resolved, skipEmptyCheck])).digest('hex');
  return { fingerprint, open: () => openWalTarget(resolved, skipEmptyCheck) };
}

async function openWalTarget(resolved: ResolvedObjectStore, skipEmptyCheck: boolean): Promise<WalTarget> {
  const cfg = resolved.config;
  const store = await openObjectStore(resolved);
  return {
    store,
    serverName: resolved.serverName,
    compression: cfg.wal?.compression ?? 'none',
    maxParallel: Math.max(1, cfg.wal?.maxParallel ?? 1),
    tags: cfg.tags,
    historyTags: cfg.historyTags,
    encryption: cfg.wal?.encryption,
    age: resolved.age,
    skipEmptyCheck,
    serverNameField: resolved.fields?.serverName,
    description: `${store.displayUrl} server "${resolved.serverName}"`,
  };
}

/**
 * A drop-in's target. skipEmptyCheck: barman's wal-archive checks nothing itself; CloudNativePG runs
 * barman-cloud-check-wal-archive before the first upload, then starts up to maxParallel archivers
 * at once, each of which would find the others' uploads if it checked again.
 */
function barmanWalTarget(ref: BarmanRef): WalTargetSource {
  const resolved = resolveBarmanStore(ref.store);
  const fingerprint = createHash('sha256').update(JSON.stringify([resolved, ref])).digest('hex');
  return {
    fingerprint,
    open: async () => {
      applyAwsProfile(resolved);
      const store = await openObjectStore(resolved.options);
      const { compression, maxParallel, tags, historyTags, encryption } = ref;
      return { store, serverName: resolved.serverName, compression, maxParallel, tags, historyTags, encryption, skipEmptyCheck: true, description: `${store.displayUrl} server "${resolved.serverName}"` };
    },
  };
}

export async function loadWalTarget(ref: ConfigRef): Promise<WalTarget> {
  return (await resolveWalTarget(ref)).open();
}

/**
 * How long a kept target is used before its manifests and Secrets are read again. Credentials
 * rotate underneath a running daemon (a --secrets-dir volume is swapped atomically through its
 * ..data symlink; a Kubernetes Secret is updated in place), and nothing else tells us.
 */
const RECHECK_MS = 30_000;

interface CachedTarget {
  fingerprint: string;
  target: Promise<WalTarget>;
  /** Manifest mtimes when last resolved: an edit is picked up at once, not after RECHECK_MS. */
  stamp: string;
  checkedAt: number;
}

/**
 * Targets kept open by long-running processes (the resident WAL daemon, the agent's cluster
 * workers), one per distinct ConfigRef. The manifests and Secrets are read again when a manifest
 * file changes, every RECHECK_MS, and after the store rejected the credentials; a target is
 * reopened only when what they resolve to changed (an edited wal.compression, a rotated key), so
 * neither needs a restart.
 */
export class WalTargetCache {
  private readonly entries = new Map<string, CachedTarget>();
  /** The re-read in progress per ConfigRef, shared by concurrent requests. */
  private readonly pending = new Map<string, Promise<WalTarget>>();

  constructor(
    private readonly resolve: (ref: ConfigRef) => Promise<WalTargetSource> = resolveWalTarget,
    private readonly recheckMs = RECHECK_MS,
  ) {}

  get(ref: ConfigRef): Promise<WalTarget> {
    const key = refKey(ref);
    const stamp = ref.files.map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0).join(',');
    const cached = this.entries.get(key);
    if (cached && cached.stamp === stamp && performance.now() - cached.checkedAt < this.recheckMs) return cached.target;
    let pending = this.pending.get(key);
    if (!pending) {
      // A failed re-read (bad manifest, missing secret) fails this request and is retried on the next.
      pending = this.reload(key, ref, stamp).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  /** After a failed transfer: credentials the store rejected are read again before the next attempt. */
  failed(ref: ConfigRef, err: unknown): void {
    const cached = this.entries.get(refKey(ref));
    if (cached && err instanceof StorageError && err.kind === 'auth') cached.checkedAt = -Infinity;
  }

  private async reload(key: string, ref: ConfigRef, stamp: string): Promise<WalTarget> {
    const checkedAt = performance.now();
    const source = await this.resolve(ref);
    const current = this.entries.get(key);
    if (current?.fingerprint === source.fingerprint) {
      current.stamp = stamp;
      current.checkedAt = checkedAt;
      return current.target;
    }
    const target = source.open();
    this.entries.set(key, { fingerprint: source.fingerprint, target, stamp, checkedAt });
    if (current) {
      // Give in-flight transfers time to finish on the old connections.
      setTimeout(() => void current.target.then((t) => t.store.close()).catch(() => undefined), 120_000).unref();
    }
    target.catch(() => {
      if (this.entries.get(key)?.target === target) this.entries.delete(key);
    });
    return target;
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.target.then((t) => t.store.close()).catch(() => undefined)));
  }
}

function refKey(ref: ConfigRef): string {
  return JSON.stringify([ref.files, ref.secretsDir, ref.cluster, ref.source, ref.barman]);
}
