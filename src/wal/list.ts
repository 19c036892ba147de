/**
 * The one lister of a server's WAL archive (<server>/wals/): every WAL file, one folder of it, the
 * keys after a given one, or the top level with its TLI+LOG folders. `pgark wal-list`, retention,
 * the recovery WAL window, the empty-archive check and the archived-WAL index all read through it.
 * Also what the archive holds, per timeline: first and last segment, count, gaps, bytes, plus
 * history, .backup and .partial files.
 */
import { hashDirTimeline, walsPrefix } from '../catalog/layout.js';
import { splitCodecSuffix, type CodecName } from '../codec/types.js';
import { DEFAULT_WAL_SEGMENT_SIZE, parseSegmentName, recogniseWalName, segmentNameAt, segmentNumber, type WalFileKind } from '../pg/wal-names.js';
import type { ListEntry, ObjectStore } from '../storage/types.js';

export interface ArchivedWalFile {
  key: string;
  /** WAL file name without compression suffix. */
  name: string;
  kind: WalFileKind;
  timeline: number;
  codec: CodecName;
  /** Age-encrypted (.age after the codec's suffix). */
  encrypted: boolean;
  /** Stored (compressed) size. */
  size: number;
  lastModified?: Date;
}

/** A TLI+LOG folder of wals/ (key prefix ending in '/'). */
export interface WalFolder {
  prefix: string;
  timeline: number;
}

/** The WAL file an entry of a listing names; undefined for folders and keys that are not WAL files (at most one codec suffix). */
function walFileOf(entry: ListEntry): ArchivedWalFile | undefined {
  const obj = entry.object;
  if (!obj) return undefined;
  const { base, codec, encrypted } = splitCodecSuffix(obj.key.slice(obj.key.lastIndexOf('/') + 1));
  const wal = recogniseWalName(base);
  if (!wal) return undefined;
  return { key: obj.key, name: base, kind: wal.kind, timeline: wal.timeline, codec, encrypted, size: obj.size, lastModified: obj.lastModified };
}

/**
 * The WAL files whose keys start with `prefix` (wals/ of a server, one of its folders, or the key
 * of one WAL name, which also matches its compressed variants), in key order. Other keys are skipped.
 */
export async function* walFilesUnder(store: ObjectStore, prefix: string, opts: { startAfter?: string } = {}): AsyncGenerator<ArchivedWalFile> {
  for await (const entry of store.list(prefix, { startAfter: opts.startAfter })) {
    const file = walFileOf(entry);
    if (file) yield file;
  }
}

/** Every WAL file of the server, in key order (timeline, then position). Unknown keys are skipped. */
export function archivedWalFiles(store: ObjectStore, serverName: string): AsyncGenerator<ArchivedWalFile> {
  return walFilesUnder(store, walsPrefix(serverName));
}

/** One level of wals/: the files there (history files, stray segments) and the TLI+LOG folders. */
export async function* walArchiveTopLevel(store: ObjectStore, serverName: string): AsyncGenerator<ArchivedWalFile | WalFolder> {
  const top = walsPrefix(serverName);
  for await (const entry of store.list(top, { delimiter: '/' })) {
    if (entry.prefix) {
      const timeline = hashDirTimeline(entry.prefix.slice(top.length, -1));
      if (timeline !== undefined) yield { prefix: entry.prefix, timeline };
      continue;
    }
    const file = walFileOf(entry);
    if (file) yield file;
  }
}

export interface WalGap {
  /** First missing segment. */
  from: string;
  /** Last missing segment. */
  to: string;
  missing: number;
}

export interface TimelineSummary {
  timeline: number;
  firstSegment: string;
  lastSegment: string;
  segments: number;
  gaps: WalGap[];
  bytes: number;
  /** When the newest of its segments was stored (the store's last-modified time), when the store says. */
  lastStored?: Date;
}

export interface WalArchiveSummary {
  serverName: string;
  timelines: TimelineSummary[];
  historyFiles: string[];
  backupLabels: string[];
  partialFiles: string[];
  objects: number;
  totalBytes: number;
}

/** Summarises the archive. Gaps assume `segmentSize` (16 MiB unless the cluster was initialised otherwise). */
export async function summarizeWalArchive(store: ObjectStore, serverName: string, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): Promise<WalArchiveSummary> {
  const summary: WalArchiveSummary = { serverName, timelines: [], historyFiles: [], backupLabels: [], partialFiles: [], objects: 0, totalBytes: 0 };
  const byTimeline = new Map<number, { numbers: Set<number>; bytes: number; lastStored?: Date }>();
  for await (const f of archivedWalFiles(store, serverName)) {
    summary.objects++;
    summary.totalBytes += f.size;
    if (f.kind === 'history') summary.historyFiles.push(f.name);
    else if (f.kind === 'backup') summary.backupLabels.push(f.name);
    else if (f.kind === 'partial') summary.partialFiles.push(f.name);
    else {
      const t = byTimeline.get(f.timeline) ?? { numbers: new Set<number>(), bytes: 0 };
      t.numbers.add(segmentNumber(parseSegmentName(f.name), segmentSize));
      t.bytes += f.size;
      if (f.lastModified && !(t.lastStored && t.lastStored >= f.lastModified)) t.lastStored = f.lastModified;
      byTimeline.set(f.timeline, t);
    }
  }
  for (const [timeline, t] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    const numbers = [...t.numbers].sort((a, b) => a - b);
    const gaps: WalGap[] = [];
    for (let i = 1; i < numbers.length; i++) {
      if (numbers[i] !== numbers[i - 1] + 1) {
        gaps.push({
          from: segmentNameAt(timeline, numbers[i - 1] + 1, segmentSize),
          to: segmentNameAt(timeline, numbers[i] - 1, segmentSize),
          missing: numbers[i] - numbers[i - 1] - 1,
        });
      }
    }
    summary.timelines.push({
      timeline,
      firstSegment: segmentNameAt(timeline, numbers[0], segmentSize),
      lastSegment: segmentNameAt(timeline, numbers[numbers.length - 1], segmentSize),
      segments: numbers.length,
      gaps,
      bytes: t.bytes,
      lastStored: t.lastStored,
    });
  }
  return summary;
}
