/**
 * Gathers what the recoverability timeline draws from one server's store: the catalog, the WAL
 * listing with every history file, the stored verify results and restore drill reports, and hands
 * them to the pure model (model.ts). Only listings and small documents are read, never a backup
 * or a segment.
 * Drill reports are read by the drill code's own history reader, verify results by their key
 * time; a document that cannot be read becomes a note, never a failure of the picture.
 */
import { listBackups } from '../catalog/catalog.js';
import type { AgeKeys } from '../codec/index.js';
import { drillHistory } from '../drill/report.js';
import type { ObjectStore } from '../storage/types.js';
import { DEFAULT_WAL_SEGMENT_SIZE, historyFileName } from '../pg/wal-names.js';
import { verifyResultKey, verifyResultsPrefix } from '../verify/results.js';
import type { VerifyResult } from '../verify/report.js';
import { listArchive, readHistory } from '../wal/inventory.js';
import { buildTimelineModel, type HistoryInput, type TimelineModel } from './model.js';

export interface LoadOptions {
  now?: Date;
  since?: Date;
  retentionPolicy?: string;
  /** The store's age keys, for encrypted history files (without them such a file becomes a note). */
  age?: AgeKeys;
}

/** Every stored verify result from `since` on; one that cannot be read or parsed is a note. */
async function verifyRuns(store: ObjectStore, serverName: string, since: Date | undefined, notes: string[]): Promise<{ key: string; result: VerifyResult }[]> {
  const prefix = verifyResultsPrefix(serverName);
  // Keys are UTC times (verify/results.ts), so --since skips older runs by key alone.
  const fromKey = since ? verifyResultKey(serverName, since).slice(0, -'.json'.length) : prefix;
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object?.key.endsWith('.json') && e.object.key >= fromKey) keys.push(e.object.key);
  const out: { key: string; result: VerifyResult }[] = [];
  for (const key of keys.sort()) {
    try {
      const value: unknown = JSON.parse((await store.getBuffer(key)).toString('utf8'));
      // The model checks the version; a document that is not even an object has none to check.
      if (typeof value !== 'object' || value === null) throw new Error('not a JSON object');
      out.push({ key, result: value as VerifyResult });
    } catch (err) {
      notes.push(`${key}: not a verify result (${(err as Error).message}); left out`);
    }
  }
  return out;
}

export async function loadTimeline(store: ObjectStore, serverName: string, opts: LoadOptions = {}): Promise<TimelineModel> {
  const now = opts.now ?? new Date();
  const notes: string[] = [];
  const catalog = await listBackups(store, serverName, now);
  const segmentSize = catalog.backups.find((b) => b.xlog_segment_size)?.xlog_segment_size ?? DEFAULT_WAL_SEGMENT_SIZE;
  const archive = await listArchive(store, serverName, segmentSize);
  const histories = new Map<number, HistoryInput>();
  for (const [tl, file] of archive.histories) {
    try {
      histories.set(tl, { entries: await readHistory(store, file, tl, opts.age), lastModified: file.lastModified });
    } catch (err) {
      notes.push(`${historyFileName(tl)}: ${(err as Error).message}`);
    }
  }
  return buildTimelineModel({
    serverName,
    store: store.displayUrl,
    now,
    since: opts.since,
    retentionPolicy: opts.retentionPolicy,
    catalog,
    archive,
    histories,
    segmentSize,
    verifyRuns: await verifyRuns(store, serverName, opts.since, notes),
    drills: await drillHistory(store, serverName),
    notes,
  });
}
