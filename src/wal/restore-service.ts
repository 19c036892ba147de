/**
 * Restore side of the resident WAL daemon: serves restore_command requests and keeps a queue of the
 * next segments (PGARK_WAL_RESTORE_QUEUE_MIB of them, on disk) prefetched in the restore spool (one
 * folder per source), so PostgreSQL's single-threaded replay rarely waits on the network. The queue
 * is filled in order, HEAD_LANES transfers at a time once replay runs, more only while more deliver
 * more (restore-lanes.ts), at most wal.maxParallel, and by the daemon `restore --start` starts during
 * the data step (from one transfer at a time, WARM_LANES, more only while more deliver more beside
 * the download), so that replay starts with it full. Names the daemon's folder listing holds are
 * fetched without a LIST each (restore.ts says why that never ends replay early). Prefetched files
 * are renamed into the spool only when complete and checked, so the spool never holds a partial
 * file under a WAL name. They are not fsynced: the spool is served only while the daemon that
 * filled it runs, in this boot (runtime.ts, claimRestoreSpool), so no crash can leave a file there
 * that anyone will serve, and PostgreSQL fetches again whatever it needs after a crash. An fsync per
 * segment wrote each 16 MiB to disk on replay's path for nothing.
 * bin/pgark takes prefetched segments out of the spool without starting Node (or telling us): a
 * watch on each spool sees a segment leave it and moves the window on, as a request would.
 *
 * While a prefetch runs, <spool>/<name>.inflight exists, and bin/pgark waits for it rather than
 * start Node to ask for the same file.
 *
 * Timeline history files PostgreSQL probes for (the next timeline at start and at promotion, the
 * parent's at promotion) are usually absent, and only Node could say so. When the daemon has just
 * listed them absent, it leaves <spool>/<name>.absent for HISTORY_ABSENT_MS, and bin/pgark answers
 * "not found" from it (while this daemon runs): at start after warm(), at promotion after the
 * request that found the archive's end, or after the prefetch found it once replay took the last
 * segment (replay can outlast a marker written at start). The segment after the archive's end gets a marker too, for
 * SEGMENT_ABSENT_MS only, when a request or a prefetch has just listed it absent: the prefetch
 * lists it again each time replay takes a segment, so PostgreSQL's request finds a fresh marker
 * (or the .inflight of that very listing) and the archive's end costs no Node start. Past the
 * first name found absent nothing more is prefetched. And since PostgreSQL then reads the last
 * segment again (to find the end of its WAL), that one is put back into the spool: from a copy made
 * while it waited there, or fetched again when the end was found only after replay took it.
 */
import { constants, copyFileSync, existsSync, renameSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NotFoundError } from '../util/errors.js';
import { pathExists } from '../util/fs.js';
import { untracked, type TransferTracker } from '../util/gc.js';
import { logger } from '../util/log.js';
import { setting } from '../util/options.js';
import type { ConfigRef } from './protocol.js';
import { fetchWalFile } from './restore.js';
import { LaneGauge } from './restore-lanes.js';
import { absenceMarkerText, INFLIGHT_SUFFIX, noteRenameTarget, restoreSpoolDir, takeSpooledFile, type WalRuntime } from './runtime.js';
import { ArchivedWalIndex, findStoredWal } from './stored-wal.js';
import { classifyWalName, DEFAULT_WAL_SEGMENT_SIZE, followingSegments, historyFileName, isSegmentSize, nextSegment, parseSegmentName, previousSegment, recogniseWalName, segmentNumber } from '../pg/wal-names.js';
import type { WalTarget, WalTargetCache } from './target.js';

/** Suffix of the marker saying a history file was absent from the archive a moment ago (bin/pgark reads it). */
export const ABSENT_SUFFIX = '.absent';
/**
 * How long a history file's absence marker answers. Long enough for PostgreSQL to get from the
 * request that prompted the listing to its probes on a loaded machine, short enough that a timeline
 * another server creates meanwhile is seen about as promptly as through Node (and a new timeline in
 * the source archive does not touch the recovered cluster's own, empty, archive).
 */
const HISTORY_ABSENT_MS = 10_000;
/**
 * A segment's: only the repeat of the request that listed it absent, moments later. Replay never
 * ends short of the archive's end as listed when the restore started (finish.ts checks), and with
 * a target PostgreSQL itself refuses to promote short of it.
 */
const SEGMENT_ABSENT_MS = 2_000;

/**
 * Transfers at once when replay starts, and the fewest after: all maxParallel at once share the
 * cores and arrive together, late for the one PostgreSQL waits on (700 ms at the start of a 2-core
 * replay, docs/measurements/recovery-time.md); the gauge adds lanes only where they deliver more
 * (a store far away).
 */
const HEAD_LANES = 2;
/**
 * Transfers at once when the data step starts (warm()), and the fewest before replay: the download runs
 * its own transfers on the same cores, and a queue filled sooner than the data step ends gains
 * nothing. A gauge of its own learns from these transfers whether more at once deliver more beside
 * the download: on a loopback store they share the cores and it stays near one; against a store a
 * round trip away, where a transfer takes as long with more beside it, one lane filled a queue of six
 * segments only after replay had started (docs/measurements/recovery-time.md, "Replay and the
 * data step against their bounds").
 */
const WARM_LANES = 1;

/** Names the spare copy of the archive's last segment: not a WAL name, so bin/pgark never serves it. */
const KEPT_PREFIX = '.kept-';

/** What one spool's prefetch wants, nearest first. */
interface Queue {
  target: WalTarget;
  ref: ConfigRef;
  names: string[];
}

/**
 * Removes each absence marker once it stops answering. One timer per marker: a marker written again
 * (the end of the archive listed again at each take) must not be removed by the timer of the one it
 * replaced, which had sent PostgreSQL's repeat request for the archive's end through Node.
 */
class AbsenceMarkers {
  private readonly expiries = new Map<string, NodeJS.Timeout>();

  /** Leaves <spool>/<name>.absent for `ms`: a listing just now found no `name` (bin/pgark answers "not found" from it). */
  async mark(spool: string, name: string, ms: number): Promise<void> {
    const marker = join(spool, `${name}${ABSENT_SUFFIX}`);
    await writeFile(marker, absenceMarkerText(ms), { mode: 0o600 });
    clearTimeout(this.expiries.get(marker));
    const expiry = setTimeout(() => {
      this.expiries.delete(marker);
      void unlink(marker).catch(() => undefined);
    }, ms).unref();
    this.expiries.set(marker, expiry);
  }
}

export interface RestoreServiceOptions {
  /** Told of each segment a prefetch found absent from the store: the archive ends before it (for now). */
  onMissing?: (name: string, ref: ConfigRef) => void;
  /** Told of each fetch and listing while it runs (the daemon's and the sidecar's Buffer collectors check only then). */
  trackTransfer?: TransferTracker;
}

export class RestoreService {
  /** Prefetches in flight, by spool path; resolve to true when the file is in the spool. */
  private readonly inflight = new Map<string, Promise<boolean>>();
  private segmentSize = DEFAULT_WAL_SEGMENT_SIZE;
  private readonly watchers = new Map<string, FSWatcher>();
  /** Whether bin/pgark has been told where it may rename segments to (runtime.ts noteRenameTarget). */
  private renameTargetNoted = false;
  /** By spool: the newest segment handed to PostgreSQL; older names leaving the spool are our own clean-up. */
  private readonly newestServed = new Map<string, string>();
  private readonly queues = new Map<string, Queue>();
  /** By spool: the first segment a prefetch found absent (the archive's end, for now); nothing after it is fetched. */
  private readonly absentFrom = new Map<string, string>();
  /** Spool paths whose prefetch failed (not NotFound): tried again at the next take, not as each transfer ends. */
  private readonly failed = new Set<string>();
  /** By spool: the segment fetched back for PostgreSQL's re-read at the archive's end (once per end). */
  private readonly fetchedBack = new Map<string, string>();
  /**
   * Never stale: a name the folder's listing lacks is answered by a LIST of that name (restore.ts), never
   * by the listing, so listing the folder again before every miss would only add a round trip.
   */
  private readonly index = new ArchivedWalIndex(Infinity);
  private readonly absenceMarkers = new AbsenceMarkers();
  /** History listings started by the prefetch, which no request waits for. */
  private readonly listings = new Set<Promise<void>>();
  /** By spool: how many transfers at once deliver the most during the data step, and once replay runs. */
  private readonly warmGauges = new Map<string, LaneGauge>();
  private readonly gauges = new Map<string, LaneGauge>();
  /** PGARK_WAL_RESTORE_QUEUE_MIB, read once: a bad value stops the daemon's start, not a prefetch. */
  private readonly queueBytes = setting('walRestoreQueueMib') * 1024 * 1024;

  private readonly onMissing?: RestoreServiceOptions['onMissing'];
  private readonly trackTransfer: TransferTracker;

  constructor(
    private readonly rt: WalRuntime,
    private readonly targets: WalTargetCache,
    opts: RestoreServiceOptions = {},
  ) {
    this.onMissing = opts.onMissing;
    this.trackTransfer = opts.trackTransfer ?? untracked;
  }

  get busy(): boolean {
    return this.inflight.size > 0 || this.listings.size > 0;
  }

  /** Puts WAL file `name` at `dest` (from the spool or the store), then refills the prefetch window. */
  async restore(name: string, dest: string, ref: ConfigRef): Promise<void> {
    const target = await this.targets.get(ref);
    const spool = restoreSpoolDir(this.rt, ref);
    await mkdir(spool, { recursive: true, mode: 0o700 });
    this.noteServed(spool, name);
    const spooled = join(spool, name);
    await this.inflight.get(spooled)?.catch(() => false);
    if (!takeSpooledFile(spooled, dest)) {
      // A segment the prefetch did not have is the first one or the archive's end: PostgreSQL's
      // history probes follow either, so they are listed in the same round trip's time.
      const [fetched] = await this.trackTransfer(Promise.allSettled([fetchWalFile(target, name, dest), this.noteAbsentHistories(target, spool, name)]));
      if (fetched.status === 'rejected' && fetched.reason instanceof NotFoundError && classifyWalName(name) === 'segment') {
        await this.absenceMarkers.mark(spool, name, SEGMENT_ABSENT_MS);
        if (segmentNumber(parseSegmentName(name, this.segmentSize), this.segmentSize) > 0) this.start(target, spool, previousSegment(name, this.segmentSize), ref);
      }
      if (fetched.status === 'rejected') {
        // A rejected credential makes the next call read the Secrets again (rotation).
        this.targets.failed(ref, fetched.reason);
        throw fetched.reason;
      }
    }
    const size = (await stat(dest)).size;
    if (classifyWalName(name) === 'segment' && isSegmentSize(size)) this.segmentSize = size;
    void this.prefetch(target, spool, name, ref);
  }

  /** The client took `name` from the spool by itself; keep the window ahead of it. */
  async served(name: string, ref: ConfigRef): Promise<void> {
    const target = await this.targets.get(ref);
    const spool = restoreSpoolDir(this.rt, ref);
    await mkdir(spool, { recursive: true, mode: 0o700 });
    this.noteServed(spool, name);
    await this.prefetch(target, spool, name, ref);
  }

  /**
   * Before PostgreSQL starts (`pgark restore --start`): starts fetching `first` and the segments
   * after it into the spool and lists the history files its first probe asks for, so that neither
   * waits for a Node start or a daemon start.
   */
  async warm(first: string, ref: ConfigRef, segmentSize: number): Promise<void> {
    const target = await this.targets.get(ref);
    const spool = restoreSpoolDir(this.rt, ref);
    await mkdir(spool, { recursive: true, mode: 0o700 });
    if (isSegmentSize(segmentSize)) this.segmentSize = segmentSize;
    this.watchSpool(target, spool, ref);
    this.fill(target, spool, [first, ...followingSegments(first, this.depth(), this.segmentSize)], ref);
    // The history probe comes first, so its answer is ready before PostgreSQL starts; `first` may
    // still be arriving while PostgreSQL starts up (bin/pgark waits for its .inflight marker).
    await this.noteAbsentHistories(target, spool, first);
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private noteServed(spool: string, name: string): void {
    if (classifyWalName(name) === 'segment' && name > (this.newestServed.get(spool) ?? '')) this.newestServed.set(spool, name);
  }

  private watchSpool(target: WalTarget, spool: string, ref: ConfigRef): void {
    if (this.watchers.has(spool)) return;
    try {
      const w = watch(spool, (event, file) => {
        if (event === 'rename' && file) void this.takenByLauncher(target, spool, String(file), ref);
      });
      // Without the watch, the launcher's takes only stop moving the window: Node requests still do.
      w.on('error', () => {
        w.close();
        this.watchers.delete(spool);
      });
      w.unref();
      this.watchers.set(spool, w);
    } catch (err) {
      logger().warn({ spool, err: (err as Error).message }, 'cannot watch the restore spool: prefetching follows restore requests only');
    }
  }

  /** `name` appeared in or left the spool: when it left and is newer than anything served, bin/pgark served it. */
  private async takenByLauncher(target: WalTarget, spool: string, name: string, ref: ConfigRef): Promise<void> {
    const path = join(spool, name);
    if (classifyWalName(name) !== 'segment' || this.inflight.has(path) || name <= (this.newestServed.get(spool) ?? '')) return;
    if (await pathExists(path)) return;
    this.noteServed(spool, name);
    await this.prefetch(target, spool, name, ref).catch((err: unknown) => logger().warn({ wal: name, err: (err as Error).message }, 'WAL prefetch failed'));
  }

  /** Segments the queue holds: PGARK_WAL_RESTORE_QUEUE_MIB of them, at least one. */
  private depth(): number {
    return Math.max(1, Math.floor(this.queueBytes / this.segmentSize));
  }

  private async prefetch(target: WalTarget, spool: string, current: string, ref: ConfigRef): Promise<void> {
    const next = followingSegments(current, this.depth(), this.segmentSize);
    if (next.length === 0) return;
    this.renameTargetNoted ||= noteRenameTarget(this.rt);
    this.watchSpool(target, spool, ref);
    await this.dropPassed(spool, current);
    this.fill(target, spool, next, ref);
  }

  /**
   * Makes `names` (nearest first) the spool's queue and starts what it may of them. Called as
   * replay takes a segment, so the first absent name is listed again then (it may have arrived, and
   * its marker must be fresh when PostgreSQL asks), and failed transfers are tried again then: not
   * each time a transfer ends, which against a failing store would loop.
   */
  private fill(target: WalTarget, spool: string, names: string[], ref: ConfigRef): void {
    this.queues.set(spool, { target, ref, names });
    this.pump(spool, true);
  }

  /** Starts the queue's next transfers, in order, up to the lanes it may use now. */
  private pump(spool: string, take = false): void {
    const q = this.queues.get(spool);
    if (!q || q.names.length === 0) return;
    const lanes = this.gauge(spool, q.target).lanes;
    let running = this.running(spool);
    const end = this.absentFrom.get(spool);
    const served = this.newestServed.get(spool) ?? '';
    for (const name of q.names) {
      if (running >= lanes) return;
      if (end && name.slice(0, 8) === end.slice(0, 8) && (name > end || (name === end && !take))) return;
      // A queue set before replay took `name` (requests and takes race): it is not asked for again.
      if (name <= served || (!take && this.failed.has(join(spool, name)))) continue;
      if (this.start(q.target, spool, name, q.ref)) running++;
    }
  }

  /**
   * The lanes of a spool's prefetch now: learnt apart before and after replay takes its first
   * segment, since during the data step the download's transfers share the cores and the network.
   */
  private gauge(spool: string, target: WalTarget): LaneGauge {
    const replaying = this.newestServed.has(spool);
    const gauges = replaying ? this.gauges : this.warmGauges;
    let gauge = gauges.get(spool);
    if (!gauge) gauges.set(spool, (gauge = new LaneGauge(replaying ? HEAD_LANES : WARM_LANES, target.maxParallel)));
    return gauge;
  }

  private running(spool: string): number {
    return [...this.inflight.keys()].filter((p) => dirname(p) === spool).length;
  }

  /** Starts fetching `name` unless it is spooled or on its way; true when it started. */
  private start(target: WalTarget, spool: string, name: string, ref: ConfigRef): boolean {
    const path = join(spool, name);
    if (this.inflight.has(path) || existsSync(path)) return false;
    this.failed.delete(path);
    const marker = `${path}${INFLIGHT_SUFFIX}`;
    try {
      writeFileSync(marker, '', { mode: 0o600 });
    } catch {
      // The spool is gone (the daemon closing): nothing to prefetch into.
      return false;
    }
    const gauge = this.gauge(spool, target);
    const lanes = this.running(spool) + 1;
    const startedAt = performance.now();
    const job = this.trackTransfer(fetchWalFile(target, name, path, this.index)).then(
      () => {
        gauge.record(lanes, performance.now() - startedAt);
        if (this.absentFrom.get(spool) === nextSegment(name, this.segmentSize) && this.fetchedBack.get(spool) !== name) this.keepCopy(spool, name);
        // Arrived after all (a live source's archive grows): no marker may say otherwise.
        if (name >= (this.absentFrom.get(spool) ?? '\uffff')) this.absentFrom.delete(spool);
        void unlink(`${path}${ABSENT_SUFFIX}`).catch(() => undefined);
        return true;
      },
      async (err) => {
        if (err instanceof NotFoundError) await this.noteMissing(target, spool, name, ref);
        else {
          this.failed.add(path);
          logger().warn({ wal: name, err: (err as Error).message }, 'WAL prefetch failed');
        }
        return false;
      },
    );
    this.inflight.set(path, job);
    // Removed once the file is in place (or will not be, its absence marker written first): bin/pgark
    // looks for the file, then waits while .inflight exists, then reads .absent.
    void job.finally(() => {
      this.inflight.delete(path);
      rmSync(marker, { force: true });
      this.pump(spool);
    });
    return true;
  }

  /** A prefetch listed segment `name` absent: the archive ends before it, for now. */
  private async noteMissing(target: WalTarget, spool: string, name: string, ref: ConfigRef): Promise<void> {
    this.onMissing?.(name, ref);
    if (classifyWalName(name) !== 'segment') return;
    const end = this.absentFrom.get(spool);
    if (!end || name.slice(0, 8) !== end.slice(0, 8) || name < end) this.absentFrom.set(spool, name);
    await this.absenceMarkers.mark(spool, name, SEGMENT_ABSENT_MS).catch(() => undefined);
    // Replay has taken the segment before it: PostgreSQL reads that one again once it hears "not found".
    const previous = segmentNumber(parseSegmentName(name, this.segmentSize), this.segmentSize) > 0 ? previousSegment(name, this.segmentSize) : undefined;
    if (!previous || this.fetchedBack.get(spool) === previous) return;
    if (previous > (this.newestServed.get(spool) ?? '')) return this.keepCopy(spool, previous);
    this.fetchedBack.set(spool, previous);
    if (!this.restoreKept(spool, previous)) this.start(target, spool, previous, ref);
    // PostgreSQL's promotion probes follow: their markers must be fresh whoever answers the end.
    // Not awaited: bin/pgark waits for this prefetch's .inflight before it reads the end's marker.
    const listing = this.trackTransfer(this.noteAbsentHistories(target, spool, previous)).catch(() => undefined);
    this.listings.add(listing);
    void listing.finally(() => this.listings.delete(listing));
  }

  /**
   * Lists the history files of the timeline after `segment`'s and of its own (PostgreSQL probes
   * the first at start and promotion, copies the second into the new timeline's history) and
   * leaves an absence marker for each the archive does not hold. A failed listing leaves none.
   */
  private async noteAbsentHistories(target: WalTarget, spool: string, segment: string): Promise<void> {
    if (classifyWalName(segment) !== 'segment') return;
    const timeline = parseSegmentName(segment, this.segmentSize).timeline;
    await Promise.all(
      [timeline + 1, timeline].map(async (tl) => {
        const name = historyFileName(tl);
        const marker = join(spool, `${name}${ABSENT_SUFFIX}`);
        const found = await findStoredWal(target.store, target.serverName, name).catch(() => 'unknown' as const);
        if (found !== undefined) return unlink(marker).catch(() => undefined);
        await this.absenceMarkers.mark(spool, name, HISTORY_ABSENT_MS);
      }),
    );
  }

  /**
   * The archive's last segment `name` is spooled and replay has not taken it yet: a copy beside it
   * is PostgreSQL's re-read of it at the end (a GET of it after the take was on promotion's path,
   * a round trip and a transfer away). Synchronous, so a copy that exists is complete; once.
   */
  private keepCopy(spool: string, name: string): void {
    const kept = join(spool, `${KEPT_PREFIX}${name}`);
    // The end is listed again at every take: copied the first time only.
    if (existsSync(kept)) return;
    try {
      copyFileSync(join(spool, name), kept, constants.COPYFILE_FICLONE);
    } catch {
      // Taken meanwhile, or no room: the fetch-back GETs it instead.
    }
  }

  /** Puts the kept copy of `name` back under its name (a rename: bin/pgark never sees part of it); false when there is none. */
  private restoreKept(spool: string, name: string): boolean {
    try {
      renameSync(join(spool, `${KEPT_PREFIX}${name}`), join(spool, name));
      return true;
    } catch {
      return false;
    }
  }

  /** Segments of the spool (and kept copies) that replay has moved past will not be asked for again. */
  private async dropPassed(spool: string, current: string): Promise<void> {
    const p = recogniseWalName(current);
    for (const f of await readdir(spool).catch(() => [] as string[])) {
      const kept = f.startsWith(KEPT_PREFIX) ? f.slice(KEPT_PREFIX.length) : undefined;
      const q = recogniseWalName(kept ?? f);
      if (q?.kind === 'segment' && q.timeline === p?.timeline && (kept ?? f) < current) await unlink(join(spool, f)).catch(() => undefined);
    }
  }
}
