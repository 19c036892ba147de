/**
 * The "Expected empty archive" check (barman-cloud-check-wal-archive, cnpg-barman-cloud.md §2.3):
 * a new or freshly restored cluster must not write into a wals/ folder that already holds WAL on
 * the same or a higher timeline, or later restores would mix two histories.
 */
import { pipeline, type Readable } from 'node:stream';
import { splitCodecSuffix } from '../codec/types.js';
import type { AgeKeys } from '../codec/age.js';
import { CorruptDataError } from '../codec/errors.js';
import type { ObjectStore } from '../storage/types.js';
import { PgarkError } from '../util/errors.js';
import { walArchiveTopLevel, walFilesUnder } from './list.js';
import { readSegmentHeader } from './segment.js';

/** What a non-empty archive holds, enough for a useful error message. */
export interface ArchivedWalReport {
  /** Timelines with at least one WAL file (segment, .history, .backup or .partial), ascending. */
  timelines: number[];
  /** A few keys of WAL files found, for the error message. */
  samples: string[];
  /** Newest plain segment on the highest timeline seen (key), to read its system identifier. */
  newestSegmentKey?: string;
}

const SAMPLE_COUNT = 3;

/**
 * Lists the WAL files of `serverName` on timelines >= `timeline` (all timelines when absent).
 * Reads one level of wals/ and then only as much of each timeline's folders as it takes to find
 * a real WAL file, so it stays cheap on large archives.
 */
export async function findArchivedWal(store: ObjectStore, serverName: string, opts: { timeline?: number } = {}): Promise<ArchivedWalReport> {
  const minTimeline = opts.timeline ?? 0;
  const timelines = new Set<number>();
  const samples: string[] = [];
  const dirsByTimeline = new Map<number, string[]>();
  for await (const entry of walArchiveTopLevel(store, serverName)) {
    if (entry.timeline < minTimeline) continue;
    if ('key' in entry) {
      timelines.add(entry.timeline);
      if (samples.length < SAMPLE_COUNT) samples.push(entry.key);
    } else {
      dirsByTimeline.set(entry.timeline, [...(dirsByTimeline.get(entry.timeline) ?? []), entry.prefix]);
    }
  }
  let newestSegmentKey: string | undefined;
  const ordered = [...dirsByTimeline.keys()].sort((a, b) => b - a);
  for (const tli of ordered) {
    const dirs = dirsByTimeline.get(tli)!;
    // Newest folder first: its last segment is the one whose header tells whose WAL this is.
    for (const dir of [...dirs].reverse()) {
      let found = false;
      let lastSegment: string | undefined;
      for await (const wal of walFilesUnder(store, dir)) {
        found = true;
        if (wal.kind === 'segment') lastSegment = wal.key;
        if (samples.length < SAMPLE_COUNT && !samples.includes(wal.key)) samples.push(wal.key);
      }
      newestSegmentKey ??= lastSegment;
      if (found) {
        timelines.add(tli);
        break;
      }
    }
    if (newestSegmentKey && samples.length >= SAMPLE_COUNT) {
      // Enough to report; lower timelines only need to be counted, not sampled.
      for (const other of ordered.filter((t) => t < tli)) timelines.add(other);
      break;
    }
  }
  return { timelines: [...timelines].sort((a, b) => a - b), samples, newestSegmentKey };
}

/**
 * System identifier written in the first page of an archived segment; undefined when the object's
 * bytes do not decode to a WAL page header. A failure to read the object is thrown, not taken for
 * "unknown": the empty-archive gate would pass on it, and archive another system's WAL.
 */
export async function archivedSystemIdentifier(store: ObjectStore, key: string, age?: AgeKeys): Promise<string | undefined> {
  const form = splitCodecSuffix(key.slice(key.lastIndexOf('/') + 1));
  // An archiver given only recipients (public keys) cannot read what it encrypted: unknown, as for a
  // segment without a page header; CNPG's empty-archive marker check still applies.
  if (form.encrypted && !age?.identities.length && age?.passphrase === undefined) return undefined;
  const { decodeStreams } = await import('../codec/index.js');
  const source = await store.get(key);
  let readError: Error | undefined;
  source.once('error', (err: Error) => (readError = err));
  // The callback only swallows the early-exit error; the loop below sees real failures on the last stream.
  const decoder = pipeline([source, ...decodeStreams(form, age, key)], () => undefined) as unknown as Readable;
  try {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of decoder) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= 64) break;
    }
    return readSegmentHeader(Buffer.concat(chunks))?.systemIdentifier;
  } catch (err) {
    if (readError) throw readError;
    if (err instanceof CorruptDataError) return undefined;
    throw err;
  } finally {
    source.destroy();
    decoder.destroy();
  }
}

export class ArchiveNotEmptyError extends PgarkError {
  constructor(
    message: string,
    hint: string,
    readonly report: ArchivedWalReport,
  ) {
    super(message, 1, hint);
  }
}

export interface EmptyCheckOptions {
  /** Only WAL on this timeline or a higher one counts (barman's --timeline). */
  timeline?: number;
  /** This cluster's system identifier, shown next to the archive's for comparison. */
  systemIdentifier?: string;
  /** The manifest field that sets serverName in the form in use, for the hint (default the in-tree one). */
  serverNameField?: string;
}

/**
 * Throws ArchiveNotEmptyError when wals/ of serverName holds WAL (on timelines >= opts.timeline);
 * resolves when the archive can be used. For the recovery pre-check and the first archive_command.
 */
export async function checkEmptyArchive(store: ObjectStore, serverName: string, opts: EmptyCheckOptions = {}): Promise<void> {
  const report = await findArchivedWal(store, serverName, { timeline: opts.timeline });
  if (report.timelines.length === 0) return;
  const archivedSysid = report.newestSegmentKey ? await archivedSystemIdentifier(store, report.newestSegmentKey) : undefined;
  throw emptyArchiveError(store, serverName, report, opts, archivedSysid);
}

export function emptyArchiveError(
  store: ObjectStore,
  serverName: string,
  report: ArchivedWalReport,
  opts: EmptyCheckOptions,
  archivedSysid: string | undefined,
): ArchiveNotEmptyError {
  const scope = opts.timeline !== undefined ? ` on timeline ${opts.timeline} or higher` : '';
  const ids = [
    archivedSysid ? `archived WAL belongs to system ${archivedSysid}` : undefined,
    opts.systemIdentifier ? `this cluster is system ${opts.systemIdentifier}` : undefined,
  ].filter(Boolean);
  const message =
    `Expected empty archive: ${store.displayUrl} server "${serverName}" already holds WAL${scope} ` +
    `(timelines ${report.timelines.join(', ')}; e.g. ${report.samples.join(', ')})` +
    (ids.length ? `; ${ids.join(', ')}` : '');
  const hint =
    `set a new ${opts.serverNameField ?? 'spec.backup.barmanObjectStore.serverName'} for this cluster, or, if this archive really belongs to it, ` +
    'add the annotation cnpg.io/skipEmptyWalArchiveCheck: enabled to the Cluster';
  return new ArchiveNotEmptyError(message, hint, report);
}
