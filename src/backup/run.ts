/**
 * Takes one base backup into a barman-cloud object store:
 *
 *   pg_backup_start / BASE_BACKUP -> one tar per tablespace, then data.tar (pg_control last)
 *   -> pg_backup_stop -> backup_label and backup_manifest appended to data.tar
 *   -> pg_switch_wal -> wait until the end WAL segment is in the store -> backup.info (the commit)
 *
 * From a standby (standby.ts), the copy and pg_backup_start/stop run there; the restore point,
 * the switch and the archiver's state are the primary's.
 *
 * Nothing is written before the tars, and backup.info is written once, last: an interrupted
 * backup leaves tars without backup.info (invisible to every catalog, removable with
 * `pgark backup delete`). A failure that pgark sees is recorded as status=FAILED (best effort).
 *
 * A local full backup of a large enough data directory writes data.tar as parts (parts.ts), up to
 * `maxParts` at once, so that a restore decodes them at once.
 *
 * Memory: one tar is open at a time, or `maxParts` parts of data.tar, which share what one tar
 * would have: at most `jobs` compression blocks in flight (codec block size each, x2 for input and
 * output; each part's compressor gets jobs / maxParts workers) plus the upload's `queueSize` parts
 * of `partSize` bytes (divided among the parts; each upload also fills up to two), plus a few MiB
 * of stream buffers: see docs/backups.md.
 */
import type { Transform } from 'node:stream';
import type pg from 'pg';
import type { ResolvedObjectStore } from '../config/types.js';
import { CURRENT_TIMELINE_SQL, type PgConnectionOptions } from '../pg/connect.js';
import type { CodecName } from '../codec/types.js';
import { codecExtension, encodeStream, framedCompressStream, isFramedCodec, parallelCompressStream, type AgeKeys } from '../codec/index.js';
import { openObjectStore } from '../storage/open.js';
import { backupPrefix } from '../catalog/layout.js';
import { catalogWriteOptions } from '../catalog/catalog.js';
import { logger } from '../util/log.js';
import { ArchiveWriter } from './archive-writer.js';
import { renderBackupManifest, type ManifestFile } from '../pg/backup-manifest.js';
import { LocalSource } from './local-source.js';
import { RemoteSource } from './remote-source.js';
import { connectBackupServers, type BackupTarget } from './standby.js';
import { chooseMethod, type BackupMethod } from './pg-target.js';
import { parseLsn } from '../pg/lsn.js';
import { walSegmentName, walSegmentOffset } from '../pg/wal-names.js';
import { checkArchivingConfigured, lastSegmentOfBackup, waitForWal, WalArchivingError } from './wait-wal.js';
import { claimBackupId } from './claim.js';
import { Progress } from './progress.js';
import type { BackupRecord } from './record.js';
import { commitBackupInfo, ensureNameIsFree } from './commit.js';
import { setting } from '../util/options.js';
import { UserError } from '../util/errors.js';
import { FILE_MAP_VERSION, incrementalPrefix, writeFileMap } from '../catalog/incremental.js';
import { BackupFiles, findParent, manifestPath, type BackupType, type Parent } from './incremental.js';
import { partName, planParts } from './parts.js';
import type { MemoryPlan } from '../config/memory.js';

export interface BackupRequest {
  store: ResolvedObjectStore;
  pg: PgConnectionOptions;
  /** backup_name in backup.info (a Backup manifest's metadata.name, or --name). */
  name?: string;
  immediateCheckpoint: boolean;
  compression: CodecName;
  /** Compression workers and parts uploaded at once. */
  jobs: number;
  method: BackupMethod;
  walTimeoutSeconds: number;
  /** CNPG's spec.target; prefer-standby reads `standby` when it is a streaming standby (default primary). */
  target?: BackupTarget;
  /** The standby's host/port; the other connection fields are the primary's. */
  standby?: PgConnectionOptions;
  /** Multipart part size in bytes (default 8 MiB; raised by the store when the object would need too many parts). */
  partSize?: number;
  /** Parts uploaded at once (default max(2, jobs)); with partSize, the upload's memory. */
  queueSize?: number;
  /** Progress display: true = terminal line / JSON lines; false = silent. */
  progress?: boolean;
  /** full (default) or incremental: only files changed since the newest backup are stored (backup/incremental.ts). */
  type?: BackupType;
  /** application_name of the SQL session (default pgark_backup; the barman-cloud drop-in uses barman's). */
  applicationName?: string;
  /** Most of data.tar's parts (parts.ts: up to `jobs`) written at once (default `jobs`; a memory budget lowers it, config/memory.ts). */
  maxParts?: number;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/** backup.info's WAL name and offset for a position (barman's location_to_xlogfile_name_offset). */
function walFileAt(timeline: number, lsn: string, segmentSize: number): { wal: string; offset: number } {
  const pos = parseLsn(lsn);
  return { wal: walSegmentName(timeline, pos, segmentSize), offset: walSegmentOffset(pos, segmentSize) };
}

/** Levels PGARK_COMPRESS_LEVEL may set per codec (snappy and lz4 have none). */
const LEVELS: Partial<Record<CodecName, [number, number]>> = { gzip: [0, 9], zstd: [1, 22], xz: [0, 9], bzip2: [1, 9] };

/** PGARK_COMPRESS_LEVEL checked against the codec's levels; undefined = the codec's default (codec/parallel.ts). */
function compressLevel(codec: CodecName): number | undefined {
  const level = setting('compressLevel');
  const range = LEVELS[codec];
  if (level === undefined || !range) return undefined;
  if (level < range[0] || level > range[1]) {
    throw new UserError(`PGARK_COMPRESS_LEVEL=${level} is not a ${codec} level: expected ${range[0]}-${range[1]}`, `unset it for the default, or set a level from ${range[0]} to ${range[1]}`);
  }
  return level;
}

/**
 * One codec stream per tar (barman-cloud reads a single gzip member / bzip2 stream), compressed on
 * `jobs` cores. Codecs with restart points get a framed compressor, so the tar is indexed for
 * ranged reads (tar-index.ts); encrypted tars cannot be read from the middle and get none.
 */
function compressor(codec: CodecName, jobs: number, age: AgeKeys | undefined, level: number | undefined): Transform {
  if (!age && isFramedCodec(codec)) return framedCompressStream(codec, { workers: jobs, level });
  return encodeStream(parallelCompressStream(codec, { workers: jobs, level }), age);
}

export interface BackupResult {
  record: BackupRecord;
  method: 'local' | 'remote';
  displayUrl: string;
  /** The server whose files were copied. */
  from: 'primary' | 'standby';
}

/**
 * takeBackup in a process of its own (a command, the agent's child): the upload sizes of `memory`'s
 * plan where the request sets none, and the plan's Buffer collector while the backup runs. The
 * sidecar sizes its requests itself and runs its collector for as long as it lives (plugin/serve.ts).
 */
export async function takeBackupWithin(memory: MemoryPlan, req: BackupRequest): Promise<BackupResult> {
  const sizes = memory.backupUpload(req.jobs);
  // debug: a barman-cloud drop-in's stderr holds barman's own lines only.
  logger().debug(memory.summary() ?? {}, 'backup memory budget');
  const collector = memory.startCollector();
  try {
    return await takeBackup({ ...req, partSize: req.partSize ?? sizes.partSize, queueSize: req.queueSize ?? sizes.queueSize, maxParts: req.maxParts ?? sizes.maxParts });
  } finally {
    collector.stop();
  }
}

export async function takeBackup(req: BackupRequest): Promise<BackupResult> {
  const log = logger();
  const level = compressLevel(req.compression);
  const store = await openObjectStore(req.store);
  let sql: pg.Client | undefined;
  let primary: pg.Client | undefined;
  try {
    const serverName = req.store.serverName;
    if (req.name !== undefined) await ensureNameIsFree(store, serverName, req.name);
    const servers = await connectBackupServers(req.pg, req.standby, req.target ?? 'primary', req.applicationName ?? 'pgark_backup');
    ({ sql, primary } = servers);
    const { facts } = servers;
    const pgdata = servers.pg.pgdata ?? setting('pgdata');
    const method = await chooseMethod(req.method, pgdata, facts);
    // The session that switches WAL and whose archiver stores the end segment: a standby's primary, when known.
    const walSession = facts.inRecovery ? primary : sql;
    if (walSession) await checkArchivingConfigured(walSession);
    let parent: Parent | undefined;
    if (req.type === 'incremental') {
      if (method !== 'local') throw new UserError('--type incremental compares the data directory\'s files with the parent backup\'s and needs --method local', 'run pgark on the server\'s host with --pgdata, or take a full backup');
      const tli = await sql.query<{ tli: number }>(`SELECT ${CURRENT_TIMELINE_SQL} AS tli`);
      parent = await findParent(store, serverName, facts, Number(tli.rows[0].tli));
    }
    const objectOptions = catalogWriteOptions(req.store.config);
    const claim = await claimBackupId(store, serverName, objectOptions);
    const backupId = claim.backupId;
    const source = method === 'local' ? new LocalSource(sql, facts, pgdata ?? facts.pgdata) : new RemoteSource(sql, servers.pg, facts);
    const progress = new Progress(backupId, facts.clusterSize, { quiet: req.progress === false });
    log.info({ event: 'backup-start', backupId, method, from: servers.from, server: serverName, store: store.displayUrl, compression: req.compression, jobs: req.jobs }, 'starting base backup');

    const ext = codecExtension(req.compression, req.store.age !== undefined);
    const writers: ArchiveWriter[] = [];
    let storedTotal = 0;
    // Bytes stored so far by the tars still being written (the parts of data.tar are written at once).
    const storing = new Map<string, number>();
    const openWriter = (name: string, sizeHint?: number, share = 1) => {
      const w = new ArchiveWriter({
        store,
        key: `${parent ? incrementalPrefix(serverName, backupId) : backupPrefix(serverName, backupId)}${name}.tar${ext}`,
        compressor: compressor(req.compression, Math.max(1, Math.floor(req.jobs / share)), req.store.age, level),
        partSize: req.partSize ?? DEFAULT_PART_SIZE,
        queueSize: Math.max(1, Math.floor((req.queueSize ?? Math.max(2, req.jobs)) / share)),
        sizeHint,
        onBytes: (n) => progress.addBytes(n),
        onStored: (n) => {
          storing.set(name, n);
          progress.setStored(storedTotal + [...storing.values()].reduce((a, b) => a + b, 0));
        },
        objectOptions,
      });
      writers.push(w);
      return w;
    };

    let record: BackupRecord | undefined;
    const began = Date.now();
    try {
      // Without an immediate checkpoint, PostgreSQL starts the backup only once a spread checkpoint ends.
      progress.setPhase(
        req.immediateCheckpoint ? 'checkpoint (immediate)' : `waiting for checkpoint (immediateCheckpoint is false; next one within ${facts.checkpointTimeoutSeconds}s)`,
        'checkpoint',
      );
      const start = await source.start(`pgark backup cloud ${backupId}`, req.immediateCheckpoint);
      progress.setPhase('copying', 'copy');
      const begin = walFileAt(start.timeline, start.lsn, facts.walSegmentSize);
      record = {
        backupId,
        backupName: req.name,
        status: 'FAILED',
        facts,
        compression: req.compression,
        beginTime: start.time,
        beginLsn: start.lsn,
        beginWal: begin.wal,
        beginOffset: begin.offset,
        timeline: start.timeline,
        parentBackupId: parent?.info.backup_id,
      };
      const perArchiveSeconds: Record<string, number> = {};
      const objectSha256: Record<string, string> = {};
      const stored = (name: string, object: { size: number; sha256: string }) => {
        objectSha256[`${name}.tar${ext}`] = object.sha256;
        storing.delete(name);
        return object.size;
      };
      const manifestFiles: ManifestFile[] = [];
      const files = new BackupFiles(backupId, parent);
      let data: ArchiveWriter | undefined;
      let dataStarted = 0;
      // Incrementals stay one tar: their block members and the comparison with the parent read the walk in order.
      const split = method === 'local' && !parent && req.jobs >= 2;
      for await (const archive of source.archives()) {
        const t0 = Date.now();
        if (archive.name === 'data' && split) {
          const plan = await planParts(files.entries('data', archive.entries), req.jobs);
          // A memory budget may allow fewer tars at once than parts (config/memory.ts): the rest wait, data.tar last.
          const width = Math.max(1, Math.min(plan.parts.length, req.maxParts ?? req.jobs));
          const queue = [...plan.parts.keys()].slice(1).concat(0);
          let failed = false;
          dataStarted = t0;
          const writePart = async (): Promise<void> => {
            for (let n = queue.shift(); n !== undefined && !failed; n = queue.shift()) {
              const entries = plan.parts[n];
              const w = openWriter(partName('data', n), entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0), width);
              if (n === 0) data = w;
              for (const entry of entries) await w.add(entry);
              if (n === 0) return;
              storedTotal += stored(partName('data', n), await w.finish());
              manifestFiles.push(...w.files);
            }
          };
          // The first failure stops new parts; the catch below aborts the ones open.
          await Promise.all(Array.from({ length: width }, () => writePart().catch((err: unknown) => ((failed = true), Promise.reject(err)))));
          // pg_control is read once every other file is: it must be newer than the data it describes.
          await data!.add(plan.last);
          continue;
        }
        const w = openWriter(archive.name, archive.name === 'data' ? facts.clusterSize : undefined);
        for await (const entry of files.entries(archive.name, archive.entries)) await w.add(entry);
        if (archive.name === 'data') {
          data = w;
          dataStarted = t0;
          continue;
        }
        storedTotal += stored(archive.name, await w.finish());
        perArchiveSeconds[archive.name] = (Date.now() - t0) / 1000;
        manifestFiles.push(...w.files.map((f) => ({ ...f, path: manifestPath(archive.name, f.path) })));
      }
      if (!data) throw new Error('the server sent no data directory archive');
      progress.setPhase('stopping backup', 'stop');
      const stop = await source.stop();
      const end = walFileAt(stop.timeline, stop.lsn, facts.walSegmentSize);
      Object.assign(record, { endTime: stop.time, endLsn: stop.lsn, endWal: end.wal, endOffset: end.offset, backupLabel: stop.labelFile });
      await data.addBuffer('backup_label', Buffer.from(stop.labelFile));
      const manifest = renderBackupManifest(files.manifestFiles([...data.files, ...manifestFiles]), [{ timeline: start.timeline, startLsn: start.lsn, endLsn: stop.lsn }]);
      await data.addBuffer('backup_manifest', manifest);
      progress.setPhase('completing upload', 'upload');
      storedTotal += stored('data', await data.finish());
      perArchiveSeconds.data = (Date.now() - dataStarted) / 1000;
      await source.close();
      if (walSession) {
        // The restore point goes in before the switch (barman does the reverse) so that the switch
        // closes the segment holding it. That matters when the stop LSN is exactly on a segment
        // boundary: a switch there does nothing, and the segment barman's end_wal names, which
        // PostgreSQL must read to stop at recoveryTarget immediate, would stay open until more WAL
        // fills it or archive_timeout.
        await walSession.query('SELECT pg_create_restore_point($1)', [`barman_${backupId}`]);
        await walSession.query('SELECT pg_switch_wal()');
      }
      const lastWal = lastSegmentOfBackup(stop.timeline, stop.lsn, facts.walSegmentSize);
      progress.setPhase(`waiting for WAL ${lastWal}`, 'walWait');
      await waitForWal(store, serverName, lastWal, walSession ?? sql, req.walTimeoutSeconds, walSession !== undefined);
      const copySeconds = Object.values(perArchiveSeconds).reduce((a, b) => a + b, 0);
      Object.assign(record, {
        status: 'DONE',
        storedBytes: storedTotal,
        objectSha256,
        copyStats: { totalSeconds: (Date.now() - began) / 1000, workers: req.jobs, perArchiveSeconds, copySeconds },
      });
      // The map lists what a restore writes from the chain: backup_label and backup_manifest belong to this backup alone.
      const mapped = files.mapFiles([...data.files.filter((f) => f.path !== 'backup_label' && f.path !== 'backup_manifest'), ...manifestFiles]);
      await writeFileMap(store, serverName, { backup_id: backupId, parent_backup_id: parent?.info.backup_id }, { version: FILE_MAP_VERSION, backupId, parent: parent?.info.backup_id ?? null, files: mapped }, objectOptions);
      progress.setPhase('committing', 'commit');
      await claim.assertHeld();
      await commitBackupInfo(store, serverName, record, objectOptions);
      await claim.release();
      progress.stop();
      log.info({ event: 'backup-done', backupId, method, from: servers.from, beginWal: record.beginWal, endWal: record.endWal, bytesStored: storedTotal, seconds: (Date.now() - began) / 1000, phaseSeconds: progress.phaseSeconds }, 'base backup done');
      return { record, method, displayUrl: store.displayUrl, from: servers.from };
    } catch (err) {
      progress.stop();
      for (const w of writers) w.abort(err as Error);
      await source.close();
      if (record) {
        record.status = 'FAILED';
        const message = String((err as Error).message ?? err).split('\n')[0];
        record.error = err instanceof WalArchivingError ? message : `failure uploading data (${message})`;
        await commitBackupInfo(store, serverName, record, objectOptions).catch((e: Error) => log.warn({ err: e.message }, 'could not record the failed backup'));
      }
      // The backup has ended either way: a claim kept beating would show it running for as long as this process lives.
      await claim.release();
      throw err;
    }
  } finally {
    await sql?.end().catch(() => undefined);
    await primary?.end().catch(() => undefined);
    await store.close();
  }
}
