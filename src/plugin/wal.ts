/**
 * The WAL service: Archive and Restore through the same resident archiver and restore prefetcher
 * the CLI's WAL daemon uses (one ArchiveService / RestoreService per data directory, look-ahead
 * over archive_status/.ready, wal.maxParallel transfers on reused connections, idempotent
 * content-checked pushes), plus Status (the archive's first and last WAL) and SetFirstRequired.
 *
 * Archive stores only when this plugin is the Cluster's WAL archiver (config.ts isWalArchiver):
 * CNPG sends every WAL to every WAL-capable plugin, and a recovery source's store must never
 * receive the new cluster's WAL (CNPG#11351). Restore with MODE_REWIND fetches exactly the file
 * pg_rewind asks for: no prefetch, nothing spooled. A segment a prefetch has just found missing
 * is answered OUT_OF_RANGE without asking the store again (end-of-archive.ts: CNPG's
 * end-of-wal-stream rule, where streaming can take over).
 */
import { basename, dirname, isAbsolute } from 'node:path';
import { classifyWalName } from '../pg/wal-names.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';
import { ArchiveService } from '../wal/archive-service.js';
import type { ConfigRef } from '../wal/protocol.js';
import { summarizeWalArchive } from '../wal/list.js';
import { fetchWalFile } from '../wal/restore.js';
import { RestoreService } from '../wal/restore-service.js';
import { ensureRuntimeDirs, walRuntime } from '../wal/runtime.js';
import { InvalidRequestError, OutOfRangeError, unary } from './calls.js';
import { readCluster, type PluginCluster } from './config.js';
import { externalStoreRef, isWalArchiver, recoveryStoreRef, targetStoreRef, type StoreRef } from '../config/plugin-form.js';
import { walRef, type PluginContext } from './context.js';
import { EndOfArchive, streamingAvailable } from './end-of-archive.js';
import { readFirstRequired, writeFirstRequired } from './first-required.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

export const WAL_CAPABILITIES = ['TYPE_ARCHIVE_WAL', 'TYPE_RESTORE_WAL', 'TYPE_STATUS', 'TYPE_SET_FIRST_REQUIRED'] as const;

interface ArchiveRequest {
  clusterDefinition: Buffer;
  sourceFileName: string;
  parameters: Record<string, string>;
  /** Absent when the operator predates cnpg-i v0.6.0. */
  checkEmptyWalArchive?: boolean;
}

interface RestoreRequest {
  clusterDefinition: Buffer;
  sourceWalName: string;
  destinationFileName: string;
  parameters: Record<string, string>;
  mode: 'MODE_UNSPECIFIED' | 'MODE_RECOVERY' | 'MODE_REWIND';
}

/** The WAL file name of a request, checked before anything touches the store. */
function walName(name: string, field: string): string {
  if (!classifyWalName(name)) {
    throw new InvalidRequestError(`${field} "${name}" is not a WAL file name`, 'expected a segment (000000010000000000000001), a .history, .backup or .partial file');
  }
  return name;
}

/** A path CNPG passes (full path under PGDATA/pg_wal); the data directory is the parent of pg_wal. */
function walPath(path: string, field: string): { path: string; pgdata: string } {
  if (!isAbsolute(path)) throw new InvalidRequestError(`${field} "${path}" is not an absolute path`, 'CNPG passes the full path under PGDATA/pg_wal');
  return { path, pgdata: dirname(dirname(path)) };
}

/** Where restored WAL comes from: the recovery source in a restore job, the replica source of a replica cluster, else the cluster's own store. */
function restoreStoreRef(ctx: PluginContext, cluster: PluginCluster, parameters: Record<string, string>): StoreRef {
  if (ctx.role === 'restore') return recoveryStoreRef(cluster, ctx.name);
  const replica = cluster.spec.replica;
  if (replica?.enabled && replica.source) return externalStoreRef(cluster, ctx.name, replica.source);
  return targetStoreRef(cluster, ctx.name, parameters);
}

export function walService(ctx: PluginContext): PluginService {
  const archivers = new Map<string, ArchiveService>();
  const restorers = new Map<string, RestoreService>();
  const runtime = (pgdata: string) => {
    const rt = walRuntime(pgdata);
    ensureRuntimeDirs(rt);
    return rt;
  };
  // An ArchiveService remembers what it stored by WAL name, so one serves one store: a Cluster
  // moved to another ObjectStore or serverName gets a fresh one.
  const archiver = (pgdata: string, ref: ConfigRef) => {
    const key = JSON.stringify([pgdata, ref.cluster]);
    let s = archivers.get(key);
    if (!s) archivers.set(key, (s = new ArchiveService(runtime(pgdata), ctx.targets, { compression: ctx.compression, trackTransfer: ctx.memory.trackTransfer })));
    return s;
  };
  const endOfArchive = new EndOfArchive();
  // A restore session: one data directory restoring from one store.
  const session = (pgdata: string, ref: ConfigRef) => JSON.stringify([pgdata, ref.cluster]);
  const restorer = (pgdata: string) => {
    let s = restorers.get(pgdata);
    if (!s) restorers.set(pgdata, (s = new RestoreService(runtime(pgdata), ctx.targets, { onMissing: (name, ref) => endOfArchive.found(session(pgdata, ref), name), trackTransfer: ctx.memory.trackTransfer })));
    return s;
  };

  return {
    definition: serviceDefinition('wal'),
    handlers: {
      GetCapabilities: unary('WAL.GetCapabilities', async () => ({ capabilities: WAL_CAPABILITIES.map((type) => ({ rpc: { type } })) })),

      Archive: unary('WAL.Archive', async (req: ArchiveRequest) => {
        const { path, pgdata } = walPath(req.sourceFileName, 'source_file_name');
        const name = walName(basename(path), 'source_file_name');
        const cluster = readCluster(req.clusterDefinition);
        if (!isWalArchiver(cluster, ctx.name)) {
          logger().debug({ wal: name, cluster: cluster.metadata.name }, 'not the WAL archiver of this cluster: nothing stored');
          return {};
        }
        const ref = targetStoreRef(cluster, ctx.name, req.parameters);
        if (req.checkEmptyWalArchive === false) ref.skipEmptyCheck = true;
        const config = walRef(ref);
        await archiver(pgdata, config).archive(path, config);
        ctx.markStoreReached();
        return {};
      }),

      Restore: unary('WAL.Restore', async (req: RestoreRequest) => {
        const name = walName(req.sourceWalName, 'source_wal_name');
        const { path: dest, pgdata } = walPath(req.destinationFileName, 'destination_file_name');
        const cluster = readCluster(req.clusterDefinition);
        const ref = restoreStoreRef(ctx, cluster, req.parameters);
        if (req.mode === 'MODE_REWIND') {
          await ctx.withTarget(ref, (target) => fetchWalFile(target, name, dest));
        } else {
          const config = walRef(ref);
          if (streamingAvailable(cluster, setting('podName')) && endOfArchive.take(session(pgdata, config), name)) {
            throw new OutOfRangeError(`end of the WAL archive: ${name} was not in the store when it was prefetched moments ago`);
          }
          await restorer(pgdata).restore(name, dest, config);
          ctx.markStoreReached();
        }
        return {};
      }),

      Status: unary('WAL.Status', async (req: { clusterDefinition: Buffer }) => {
        const ref = targetStoreRef(readCluster(req.clusterDefinition), ctx.name);
        return ctx.withTarget(ref, async (target) => {
          const summary = await summarizeWalArchive(target.store, target.serverName);
          const first = summary.timelines[0];
          const last = summary.timelines[summary.timelines.length - 1];
          const required = await readFirstRequired(target.store, target.serverName);
          const info: Record<string, string> = {
            segments: String(summary.timelines.reduce((n, t) => n + t.segments, 0)),
            timelines: summary.timelines.map((t) => t.timeline).join(','),
            gaps: String(summary.timelines.reduce((n, t) => n + t.gaps.length, 0)),
            historyFiles: String(summary.historyFiles.length),
            storedBytes: String(summary.totalBytes),
            compression: target.compression,
          };
          if (required) info.firstRequiredWal = required.firstRequiredWal;
          return { firstWal: first?.firstSegment ?? '', lastWal: last?.lastSegment ?? '', additionalInformation: info };
        });
      }),

      SetFirstRequired: unary('WAL.SetFirstRequired', async (req: { clusterDefinition: Buffer; firstRequiredWal: string }) => {
        const name = walName(req.firstRequiredWal, 'first_required_wal');
        const ref = targetStoreRef(readCluster(req.clusterDefinition), ctx.name);
        await ctx.withTarget(ref, (target) => writeFirstRequired(target.store, target.serverName, name));
        ctx.rememberFirstRequired(ref.serverName, name);
        return {};
      }),
    },
  };
}
