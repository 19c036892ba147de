/**
 * The object store and WAL settings a wal-archive / wal-restore request works with, read from the
 * CNPG manifests: the Cluster's own spec.backup.barmanObjectStore, or for recovery an external
 * cluster's barmanObjectStore (`--source NAME`, serverName defaulting to NAME, as CNPG does).
 */
import { statSync } from 'node:fs';
import { clusterObjectStore, findCluster, loadContext, resolveObjectStore } from '../config/index.js';
import type { Encryption } from '../config/types.js';
import type { CodecName } from '../codec/types.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { UserError } from '../util/errors.js';
import type { ConfigRef } from './protocol.js';
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
  /** The Cluster carries cnpg.io/skipEmptyWalArchiveCheck: enabled. */
  skipEmptyCheck: boolean;
  /** Safe to print: store URL and server name. */
  description: string;
}

export async function loadWalTarget(ref: ConfigRef): Promise<WalTarget> {
  if (ref.files.length === 0) {
    throw new UserError('no manifest given', 'pass -f /path/to/cluster.yaml or set PGARK_CONFIG');
  }
  const ctx = await loadContext({ files: ref.files, secretsDir: ref.secretsDir });
  const cluster = findCluster(ctx.manifests, ref.cluster);
  let resolved;
  if (ref.source) {
    const external = (cluster.spec.externalClusters ?? []).find((e) => e.name === ref.source);
    if (!external?.barmanObjectStore) {
      const names = (cluster.spec.externalClusters ?? []).map((e) => e.name);
      throw new UserError(
        `Cluster "${cluster.metadata.name}" has no externalClusters entry "${ref.source}" with a barmanObjectStore`,
        names.length ? `known external clusters: ${names.join(', ')}` : 'add spec.externalClusters[] with a barmanObjectStore section',
      );
    }
    resolved = await resolveObjectStore(ctx, external.barmanObjectStore, external.name);
  } else {
    resolved = await clusterObjectStore(ctx, cluster);
  }
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
    skipEmptyCheck: cluster.metadata.annotations?.[SKIP_EMPTY_CHECK_ANNOTATION] === 'enabled',
    description: `${store.displayUrl} server "${resolved.serverName}"`,
  };
}

/**
 * Targets kept open by the resident daemon, one per distinct ConfigRef, reloaded when a manifest
 * file changes (so an edited wal.compression or maxParallel takes effect without a restart).
 */
export class WalTargetCache {
  private readonly entries = new Map<string, { stamp: string; target: Promise<WalTarget> }>();

  constructor(private readonly load: (ref: ConfigRef) => Promise<WalTarget> = loadWalTarget) {}

  get(ref: ConfigRef): Promise<WalTarget> {
    const key = JSON.stringify([ref.files, ref.secretsDir, ref.cluster, ref.source]);
    const stamp = ref.files.map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0).join(',');
    const cached = this.entries.get(key);
    if (cached && cached.stamp === stamp) return cached.target;
    if (cached) {
      // Give in-flight transfers time to finish on the old connections.
      const old = cached.target;
      setTimeout(() => void old.then((t) => t.store.close()).catch(() => undefined), 120_000).unref();
    }
    const target = this.load(ref);
    this.entries.set(key, { stamp, target });
    // A failed load (bad manifest, missing secret) is retried on the next request.
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
