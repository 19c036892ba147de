/**
 * One object read over several connections when one connection is what its reader waits for. A
 * cloud store caps what one connection carries (the shaped test store: 40 MB/s; S3 and Azure a few
 * times that), so a restore that opens one GET per object runs at one connection's rate whenever
 * the backup has fewer objects than the restore has jobs: every barman-cloud backup under its
 * 100 GB `--max-archive-size` is one data.tar, and plugin-barman-cloud's users report restores of
 * a quarter of a terabyte taking seven hours.
 *
 * The object is first read by one plain GET, as any download. Once the reader spends most of its
 * time waiting for that connection's next bytes, judged afresh over each `probeBytes` it reads,
 * the rest is split: the plain GET is read up to a cut `partBytes` ahead and then closed, and
 * consecutive ranges from the cut on are fetched by further GETs, up to `lanes` connections in
 * all, and handed on in order, so the reader still sees one byte stream. A restore is slower than
 * its link while it creates a backup's many small files, then waits on the link for the large
 * ones: judged since the first byte, such a slow start could keep the object on one connection to
 * its end. A reader that keeps up with one connection (decoding and writing the slower side, as on
 * a loopback store) seldom splits, and late: ranges from the first byte took 0.1-0.15 s longer per
 * loopback restore (each GET costs the SDK's per-request CPU), and windows smaller than a range
 * split sooner but cost as much wherever one connection keeps up (docs/tuning.md).
 *
 * Memory: at most `lanes` ranges of `partBytes` are held: the one read and those fetched ahead.
 * Each range is a store.get of its own, which resumes a connection cut mid-range and checks the
 * server's Content-Range (resumable.ts).
 */
import { Readable } from 'node:stream';
import type { ObjectStore } from './types.js';

export interface RangedReadOptions {
  /** At most this many GETs at once. */
  lanes: number;
  /** Bytes per range. */
  partBytes: number;
  /** Bytes over which the reader's waiting is judged, again and again until it splits (default: one range). */
  probeBytes?: number;
  /** Where the plain GET stops and ranges take over, whatever the waiting: for tests of the splice. */
  splitAt?: number;
  /** Told where the ranges take over, once they do. */
  onSplit?(at: number): void;
}

/** The object `key` of `size` bytes: one GET, split into ranges over more connections while the reader waits on it. */
export function rangedRead(store: ObjectStore, key: string, size: number, opts: RangedReadOptions): Readable {
  const stop = new AbortController();
  const probeBytes = opts.probeBytes ?? opts.partBytes;

  /** A range's bytes as the connection delivered them (copying them into one Buffer cost more CPU than the rest of the reading). */
  const fetchRange = async (start: number): Promise<Buffer[]> => {
    const length = Math.min(opts.partBytes, size - start);
    // The last range is asked to the end of the object: an object that grew since it was listed
    // then fails below instead of being read short.
    const end = start + length < size ? start + length - 1 : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of await store.get(key, { start, end, signal: stop.signal })) {
      received += (chunk as Buffer).length;
      if (received > length) throw new Error(`${key}: range ${start}-${start + length - 1} returned more than ${length} bytes`);
      chunks.push(chunk as Buffer);
    }
    if (received !== length) throw new Error(`${key}: range ${start}-${start + length - 1} returned ${received} of ${length} bytes`);
    return chunks;
  };

  /** Ranges from `from` to the end, fetched from now on, `lanes` - 1 ahead of the one read. */
  function ranges(from: number): AsyncGenerator<Buffer> {
    const ahead: Promise<Buffer[]>[] = [];
    let next = from;
    const fill = () => {
      while (ahead.length < opts.lanes - 1 && next < size) {
        const range = fetchRange(next);
        // A range that fails while an earlier one is still read is reported when its turn comes.
        range.catch(() => undefined);
        ahead.push(range);
        next += opts.partBytes;
      }
    };
    fill();
    return (async function* () {
      while (ahead.length > 0) {
        const range = ahead.shift()!;
        fill();
        yield* await range;
      }
    })();
  }

  async function* bytes(): AsyncGenerator<Buffer> {
    const plain = (await store.get(key, { signal: stop.signal }))[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let position = 0;
    // The window being judged: where and when it began, and how long the reader waited in it.
    let windowFrom = 0;
    let windowStarted = performance.now();
    let waited = 0;
    let cut = opts.splitAt;
    let rest = cut === undefined ? undefined : ranges(cut);
    try {
      while (cut === undefined || position < cut) {
        const asked = performance.now();
        const next = await plain.next();
        waited += performance.now() - asked;
        if (next.done) break;
        const chunk = cut === undefined ? next.value : next.value.subarray(0, cut - position);
        position += chunk.length;
        yield chunk;
        if (cut !== undefined || opts.lanes < 2 || position - windowFrom < probeBytes) continue;
        // Most of the window spent waiting for the connection, and enough of the object left to share.
        if (waited * 2 > performance.now() - windowStarted && size - position > 2 * opts.partBytes) {
          cut = position + opts.partBytes;
          rest = ranges(cut);
          opts.onSplit?.(cut);
        }
        windowFrom = position;
        windowStarted = performance.now();
        waited = 0;
      }
      if (!rest) {
        if (position !== size) throw new Error(`${key}: the download returned ${position} of ${size} bytes`);
        return;
      }
      if (position !== cut) throw new Error(`${key}: the download ended after ${position} bytes, before ${cut}`);
      await plain.return?.();
      yield* rest;
    } finally {
      // Ended early (the reader failed or was destroyed): the GETs still running are abandoned.
      stop.abort();
      await plain.return?.();
    }
  }

  return Readable.from(bytes(), { objectMode: false });
}
