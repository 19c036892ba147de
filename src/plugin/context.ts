/**
 * What every service of one running plugin shares: its name and role, the configuration reader
 * (PluginConfig), the open object stores (a WalTargetCache keyed by StoreRef, so connections are
 * reused across calls and Secrets are re-read as the CLI's daemon does, their WAL parallelism
 * capped by the memory budget), the WAL compression worker, and whether the plugin is ready
 * (readiness.ts): the last store check, or, without one, whether a call reached a store.
 */
import type { ManifestSet } from '../config/types.js';
import type { KubeObjectStores } from '../config/kube.js';
import { CompressionPool } from '../codec/pool.js';
import type { PgConnectionOptions } from '../pg/connect.js';
import type { ConfigRef } from '../wal/protocol.js';
import { WalTargetCache, walTargetSource, type WalTarget } from '../wal/target.js';
import type { PluginConfig } from './config.js';
import type { StoreRef } from '../config/plugin-form.js';
import type { MemoryPlan } from '../config/memory.js';

export const PLUGIN_ROLES = ['instance', 'restore'] as const;
export type PluginRole = (typeof PLUGIN_ROLES)[number];

/** The WAL code keys its caches by ConfigRef; a plugin StoreRef travels in its `cluster` field. */
export function walRef(ref: StoreRef): ConfigRef {
  return { files: [], cluster: JSON.stringify([ref.namespace ?? '', ref.objectName, ref.serverName, ref.skipEmptyCheck, ref.encryption ?? null]) };
}

function storeRefOf(ref: ConfigRef): StoreRef {
  const [namespace, objectName, serverName, skipEmptyCheck, encryption] = JSON.parse(ref.cluster!) as [string, string, string, boolean, StoreRef['encryption'] | null];
  return { namespace: namespace || undefined, objectName, serverName, skipEmptyCheck, ...(encryption && { encryption }) };
}

export class PluginContext {
  readonly targets: WalTargetCache;
  /**
   * Compresses and hashes archived WAL off the event loop, in chunks (codec/encode-file.ts): one
   * worker, since each costs its own heap, tens of MiB of a 128Mi sidecar.
   */
  readonly compression = new CompressionPool(1);
  private reached = false;
  /** The background store check's last answer, when the plugin knows its Cluster (readiness.ts). */
  private checked?: boolean;
  /** SetFirstRequired's last value per serverName (also persisted in the store, first-required.ts). */
  private readonly firstRequiredWal = new Map<string, string>();

  constructor(
    readonly name: string,
    readonly role: PluginRole,
    readonly config: PluginConfig,
    /** The -f manifests (may hold a Cluster and ObjectStores), or an empty set. */
    readonly manifests: ManifestSet,
    /** How to reach the local PostgreSQL and its data directory (backup-service.ts sidecarPgOptions). */
    readonly pg: PgConnectionOptions,
    /** The sizes the sidecar's memory budget allows. */
    readonly memory: MemoryPlan,
    /** In a pod: the ObjectStores read and whose status is written through the API. */
    readonly objectStores?: KubeObjectStores,
  ) {
    this.targets = new WalTargetCache(async (ref) => {
      const store = storeRefOf(ref);
      const source = walTargetSource(await this.config.resolve(store), store.skipEmptyCheck);
      return {
        fingerprint: source.fingerprint,
        open: async () => {
          const target = await source.open();
          return { ...target, maxParallel: memory.walParallel(target.maxParallel) };
        },
      };
    });
  }

  /** The open target of a store (connections kept across calls). */
  target(ref: StoreRef): Promise<WalTarget> {
    return this.targets.get(walRef(ref));
  }

  /** Runs `fn` against the store; a success marks the store reached, a rejected credential makes the next call re-read the Secrets. */
  async withTarget<T>(ref: StoreRef, fn: (target: WalTarget) => Promise<T>): Promise<T> {
    const target = await this.target(ref);
    try {
      const result = await fn(target);
      this.reached = true;
      return result;
    } catch (err) {
      this.targets.failed(walRef(ref), err);
      throw err;
    }
  }

  /** Probe's answer: the last store check, else whether some call has reached an object store with its credentials. */
  get ready(): boolean {
    return this.checked ?? this.reached;
  }

  noteStoreCheck(ok: boolean): void {
    this.checked = ok;
  }

  markStoreReached(): void {
    this.reached = true;
  }

  rememberFirstRequired(serverName: string, wal: string): void {
    this.firstRequiredWal.set(serverName, wal);
  }

  /** The first required WAL this process was told for serverName, if any. */
  firstRequired(serverName: string): string | undefined {
    return this.firstRequiredWal.get(serverName);
  }

  async close(): Promise<void> {
    await this.compression.close();
    await this.targets.close();
  }
}
