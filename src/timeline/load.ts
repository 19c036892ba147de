/**
 * Gathers what the recoverability timeline draws from one server's store: the catalog, the WAL
 * listing with every history file, the stored verify results and restore drill reports, and hands
 * them to the pure model (model.ts). Only listings and small documents are read, never a backup
 * or a segment.
 *
 * Drill reports (<server>/pgark/drills/*.json) are read by the small shape model.ts declares, not
 * by the drill code's own type: the timeline only needs when a drill ran, whether it passed and its
 * RTO, and a report without those is left out with a note rather than failing the picture.
 */
import { listBackups } from '../catalog/catalog.js';
import type { ObjectStore } from '../storage/types.js';
import { DEFAULT_WAL_SEGMENT_SIZE, historyFileName } from '../pg/wal-names.js';
import { verifyResultsPrefix } from '../verify/results.js';
import type { VerifyResult } from '../verify/report.js';
import { listArchive, readHistory } from '../wal/inventory.js';
import { buildTimelineModel, type DrillDocument, type HistoryInput, type TimelineModel } from './model.js';

export function drillReportsPrefix(serverName: string): string {
  return `${serverName}/pgark/drills/`;
}

export interface LoadOptions {
  now?: Date;
  since?: Date;
  retentionPolicy?: string;
}

const isTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** The declared shape checked field by field; a reason when the document does not have it. */
export function asDrillDocument(value: unknown): DrillDocument | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.ok !== 'boolean') return '"ok" is not true or false';
  if (!isTime(v.startedAt)) return '"startedAt" is not a time';
  if (v.finishedAt !== undefined && !isTime(v.finishedAt)) return '"finishedAt" is not a time';
  if (v.rtoSeconds !== undefined && (typeof v.rtoSeconds !== 'number' || !(v.rtoSeconds >= 0))) return '"rtoSeconds" is not a number of seconds';
  const text = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  return {
    ok: v.ok,
    startedAt: new Date(v.startedAt).toISOString(),
    finishedAt: v.finishedAt === undefined ? undefined : new Date(v.finishedAt as string).toISOString(),
    rtoSeconds: v.rtoSeconds as number | undefined,
    backupId: text('backupId'),
    error: text('error'),
  };
}

/** The JSON documents under `prefix` whose key sorts at or after `fromKey`; one that cannot be read or parsed is a note. */
async function readDocuments(store: ObjectStore, prefix: string, fromKey: string, notes: string[]): Promise<{ key: string; value: unknown }[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.object?.key.endsWith('.json') && e.object.key >= fromKey) keys.push(e.object.key);
  const out: { key: string; value: unknown }[] = [];
  for (const key of keys.sort()) {
    try {
      out.push({ key, value: JSON.parse((await store.getBuffer(key)).toString('utf8')) });
    } catch (err) {
      notes.push(`${key}: cannot be read as JSON (${(err as Error).message}); left out`);
    }
  }
  return out;
}

/** Verify result keys are UTC times (verify/results.ts), so --since skips older runs by key alone. */
const keyTime = (d: Date | undefined) => (d ? d.toISOString().replace(/[-:]/g, '') : '');

export async function loadTimeline(store: ObjectStore, serverName: string, opts: LoadOptions = {}): Promise<TimelineModel> {
  const now = opts.now ?? new Date();
  const notes: string[] = [];
  const catalog = await listBackups(store, serverName, now);
  const segmentSize = catalog.backups.find((b) => b.xlog_segment_size)?.xlog_segment_size ?? DEFAULT_WAL_SEGMENT_SIZE;
  const archive = await listArchive(store, serverName, segmentSize);
  const histories = new Map<number, HistoryInput>();
  for (const [tl, file] of archive.histories) {
    try {
      histories.set(tl, { entries: await readHistory(store, file, tl), lastModified: file.lastModified });
    } catch (err) {
      notes.push(`${historyFileName(tl)}: ${(err as Error).message}`);
    }
  }
  const verifyRuns: { key: string; result: VerifyResult }[] = [];
  for (const { key, value } of await readDocuments(store, verifyResultsPrefix(serverName), verifyResultsPrefix(serverName) + keyTime(opts.since), notes)) {
    // The model checks the version; a document that is not even an object has none to check.
    if (typeof value === 'object' && value !== null) verifyRuns.push({ key, result: value as VerifyResult });
    else notes.push(`${key}: not a verify result; left out`);
  }
  const drills: { key: string; document: DrillDocument }[] = [];
  for (const { key, value } of await readDocuments(store, drillReportsPrefix(serverName), drillReportsPrefix(serverName), notes)) {
    const doc = asDrillDocument(value);
    if (typeof doc === 'string') notes.push(`${key}: not a drill report the timeline understands (${doc}); left out`);
    else drills.push({ key, document: doc });
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
    verifyRuns,
    drills,
    notes,
  });
}
