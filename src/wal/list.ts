/**
 * What a server's WAL archive holds, per timeline: first and last segment, count, gaps, bytes,
 * plus history, .backup and .partial files. Shared by `pgark wal-list`, retention and recovery.
 */
import { walsPrefix } from '../catalog/layout.js';
import { splitCodecSuffix, type CodecName } from '../codec/index.js';
import type { ObjectStore } from '../storage/types.js';
import { DEFAULT_SEGMENT_SIZE, parseWalName, segmentNameAt, segmentNumber, type WalFileKind } from './segment.js';

export interface ArchivedWalFile {
  key: string;
  /** WAL file name without compression suffix. */
  name: string;
  kind: WalFileKind;
  timeline: number;
  codec: CodecName;
  /** Stored (compressed) size. */
  size: number;
}

/** Every WAL file of the server, in key order (timeline, then position). Unknown keys are skipped. */
export async function* archivedWalFiles(store: ObjectStore, serverName: string): AsyncGenerator<ArchivedWalFile> {
  for await (const entry of store.list(walsPrefix(serverName))) {
    const obj = entry.object;
    if (!obj) continue;
    const { base, codec } = splitCodecSuffix(obj.key.slice(obj.key.lastIndexOf('/') + 1));
    const parsed = parseWalName(base);
    if (!parsed) continue;
    yield { key: obj.key, name: base, kind: parsed.kind, timeline: parsed.timeline, codec, size: obj.size };
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
export async function summarizeWalArchive(store: ObjectStore, serverName: string, segmentSize = DEFAULT_SEGMENT_SIZE): Promise<WalArchiveSummary> {
  const summary: WalArchiveSummary = { serverName, timelines: [], historyFiles: [], backupLabels: [], partialFiles: [], objects: 0, totalBytes: 0 };
  const byTimeline = new Map<number, { numbers: Set<number>; bytes: number }>();
  for await (const f of archivedWalFiles(store, serverName)) {
    summary.objects++;
    summary.totalBytes += f.size;
    if (f.kind === 'history') summary.historyFiles.push(f.name);
    else if (f.kind === 'backup') summary.backupLabels.push(f.name);
    else if (f.kind === 'partial') summary.partialFiles.push(f.name);
    else {
      const p = parseWalName(f.name)!;
      const t = byTimeline.get(f.timeline) ?? { numbers: new Set<number>(), bytes: 0 };
      t.numbers.add(segmentNumber(p.log!, p.seg!, segmentSize));
      t.bytes += f.size;
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
    });
  }
  return summary;
}
