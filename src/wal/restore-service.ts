/**
 * Restore side of the resident WAL daemon: serves restore_command requests and keeps the next
 * maxParallel-1 segments prefetched in the restore spool (one folder per source), so PostgreSQL's
 * single-threaded replay rarely waits on the network. Prefetched files are fsynced and renamed
 * into the spool only when complete, so the spool never holds a partial file under a WAL name.
 * bin/pgark takes prefetched segments out of the spool without starting Node (or telling us): a
 * watch on each spool sees a segment leave it and moves the window on, as a request would.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../util/errors.js';
import { pathExists } from '../util/fs.js';
import { logger } from '../util/log.js';
import type { ConfigRef } from './protocol.js';
import { fetchWalFile } from './restore.js';
import { restoreSpoolDir, takeSpooledFile, type WalRuntime } from './runtime.js';
import { classifyWalName, DEFAULT_WAL_SEGMENT_SIZE, followingSegments, isSegmentSize, recogniseWalName } from '../pg/wal-names.js';
import type { WalTarget, WalTargetCache } from './target.js';

export class RestoreService {
  /** Prefetches in flight, by spool path; resolve to true when the file is in the spool. */
  private readonly inflight = new Map<string, Promise<boolean>>();
  private segmentSize = DEFAULT_WAL_SEGMENT_SIZE;
  private readonly watchers = new Map<string, FSWatcher>();
  /** By spool: the newest segment handed to PostgreSQL; older names leaving the spool are our own clean-up. */
  private readonly newestServed = new Map<string, string>();

  constructor(
    private readonly rt: WalRuntime,
    private readonly targets: WalTargetCache,
    /** Told of each segment a prefetch found absent from the store: the archive ends before it (for now). */
    private readonly onMissing?: (name: string, ref: ConfigRef) => void,
  ) {}

  get busy(): boolean {
    return this.inflight.size > 0;
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
      await fetchWalFile(target, name, dest).catch((err: unknown) => {
        // A rejected credential makes the next call read the Secrets again (rotation).
        this.targets.failed(ref, err);
        throw err;
      });
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

  private async prefetch(target: WalTarget, spool: string, current: string, ref: ConfigRef): Promise<void> {
    const next = followingSegments(current, target.maxParallel - 1, this.segmentSize);
    if (next.length === 0) return;
    this.watchSpool(target, spool, ref);
    await this.dropPassed(spool, current);
    for (const name of next) {
      const path = join(spool, name);
      if (this.inflight.has(path)) continue;
      if (await pathExists(path)) continue;
      const job = fetchWalFile(target, name, path, { fsync: true }).then(
        () => true,
        (err) => {
          if (err instanceof NotFoundError) this.onMissing?.(name, ref);
          else logger().warn({ wal: name, err: (err as Error).message }, 'WAL prefetch failed');
          return false;
        },
      );
      this.inflight.set(path, job);
      void job.finally(() => this.inflight.delete(path));
    }
  }

  /** Segments of the spool that replay has moved past will not be asked for again. */
  private async dropPassed(spool: string, current: string): Promise<void> {
    const p = recogniseWalName(current);
    for (const f of await readdir(spool).catch(() => [] as string[])) {
      const q = recogniseWalName(f);
      if (q?.kind === 'segment' && q.timeline === p?.timeline && f < current) await unlink(join(spool, f)).catch(() => undefined);
    }
  }
}
