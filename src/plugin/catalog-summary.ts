/**
 * The recoverability facts the plugin's metrics report, read from a store and cached for a short
 * time, so that a Prometheus scrape (CNPG's exporter calls Metrics.Collect on every scrape) never
 * lists the bucket itself. A refresh lists base/ (the backup catalog) and only the newest TLI+LOG
 * folder of wals/, never the whole WAL archive. Calls that arrive during a refresh share it; a
 * Backup call invalidates the entry so the next scrape sees the backup it took.
 */
import type { ResolvedObjectStore } from '../config/types.js';
import { listBackups, type Catalog } from '../catalog/catalog.js';
import { recoverability } from '../catalog/recoverability.js';
import { openObjectStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/types.js';
import { walArchiveTopLevel, walFilesUnder, type ArchivedWalFile, type WalFolder } from '../wal/list.js';
import { logger } from '../util/log.js';
import type { PluginContext } from './context.js';

export interface CatalogSummary {
  /** Unix seconds (whole, as CNPG's metav1.Time.Unix()); undefined when the catalog has no such backup. */
  firstRecoverabilityPoint?: number;
  lastAvailableBackup?: number;
  lastFailedBackup?: number;
  /** The newest WAL segment in the archive and when the store last modified it (Unix seconds, fractional). */
  lastArchivedWal?: { name: string; storedAt: number };
  /** When this summary was read (ms since the epoch). */
  readAtMs: number;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** CNPG's gauges from a catalog, in whole Unix seconds. */
export function recoverabilityOf(catalog: Pick<Catalog, 'backups'>): Pick<CatalogSummary, 'firstRecoverabilityPoint' | 'lastAvailableBackup' | 'lastFailedBackup'> {
  const r = recoverability(catalog);
  const inSeconds = (ms: number | undefined) => (ms === undefined ? undefined : seconds(ms));
  return { firstRecoverabilityPoint: inSeconds(r.firstRecoverabilityPoint), lastAvailableBackup: inSeconds(r.lastSuccessfulBackup), lastFailedBackup: inSeconds(r.lastFailedBackup) };
}

/** The newest segment of the archive: the last TLI+LOG folder (or a segment at the top level) sorts last. */
async function lastArchivedWal(store: ObjectStore, serverName: string): Promise<CatalogSummary['lastArchivedWal']> {
  let newest: ArchivedWalFile | undefined;
  let lastFolder: WalFolder | undefined;
  const consider = (f: ArchivedWalFile) => {
    if (f.kind === 'segment' && (!newest || f.name > newest.name)) newest = f;
  };
  for await (const entry of walArchiveTopLevel(store, serverName)) {
    if ('prefix' in entry) {
      if (!lastFolder || entry.prefix > lastFolder.prefix) lastFolder = entry;
    } else consider(entry);
  }
  if (lastFolder) for await (const f of walFilesUnder(store, lastFolder.prefix)) consider(f);
  if (!newest?.lastModified) return undefined;
  return { name: newest.name, storedAt: newest.lastModified.getTime() / 1000 };
}

export async function readCatalogSummary(resolved: ResolvedObjectStore, now = Date.now()): Promise<CatalogSummary> {
  const store = await openObjectStore(resolved);
  try {
    const catalog = await listBackups(store, resolved.serverName, new Date(now));
    return { ...recoverabilityOf(catalog), lastArchivedWal: await lastArchivedWal(store, resolved.serverName), readAtMs: now };
  } finally {
    await store.close();
  }
}

/** One cached summary per store and server folder, refreshed at most once per `ttlMs`. */
export class CatalogSummaries {
  private readonly entries = new Map<string, { summary?: CatalogSummary; pending?: Promise<CatalogSummary> }>();

  constructor(
    readonly ttlMs = 30_000,
    private readonly read: (resolved: ResolvedObjectStore) => Promise<CatalogSummary> = (r) => readCatalogSummary(r),
    private readonly now: () => number = Date.now,
  ) {}

  private key(resolved: ResolvedObjectStore): string {
    return `${resolved.destinationPath}\n${resolved.endpointURL ?? ''}\n${resolved.serverName}`;
  }

  /**
   * The cached summary while it is fresh, else a new read. A failed refresh keeps serving the
   * last good summary (a scrape must not blank the gauges because the store blinked); without
   * one, the error goes to the caller.
   */
  async get(resolved: ResolvedObjectStore): Promise<CatalogSummary> {
    const key = this.key(resolved);
    const entry = this.entries.get(key) ?? {};
    this.entries.set(key, entry);
    if (entry.summary && this.now() - entry.summary.readAtMs < this.ttlMs) return entry.summary;
    entry.pending ??= this.read(resolved)
      .then((s) => (entry.summary = s))
      .finally(() => (entry.pending = undefined));
    try {
      return await entry.pending;
    } catch (err) {
      if (!entry.summary) throw err;
      logger().warn({ server: resolved.serverName, err: (err as Error).message }, 'could not refresh the backup catalog; metrics show the last one read');
      return entry.summary;
    }
  }

  /** Forgets the summary of this store, so the next get() reads it again (after a backup ended). */
  invalidate(resolved: ResolvedObjectStore): void {
    const entry = this.entries.get(this.key(resolved));
    if (entry) entry.summary = undefined;
  }
}

const perPlugin = new WeakMap<PluginContext, CatalogSummaries>();

/** The one cache of a running plugin, shared by its Backup service (which invalidates) and its Metrics service (which reads). */
export function catalogSummariesOf(ctx: PluginContext): CatalogSummaries {
  let s = perPlugin.get(ctx);
  if (!s) perPlugin.set(ctx, (s = new CatalogSummaries()));
  return s;
}
