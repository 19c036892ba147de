/**
 * Checks every page header of one WAL segment as its decoded bytes stream past, holding only the
 * header being read (at most 40 bytes). The first page's long header goes through the same check
 * restore applies (wal/segment.ts: size, page address, timeline not after the name's), then its
 * system identifier and segment size are compared with backup.info; every page's magic must be
 * the one of the backup's PostgreSQL major, its address the segment start plus its offset, and
 * its timeline one PostgreSQL would accept there: in the history of the name's timeline, never
 * decreasing, and not past the point where that timeline ended. Page contents are not read:
 * only the headers, and the decoder's own checks (gzip CRC, zstd checksum, ...) of the stream.
 */
import { Writable } from 'node:stream';
import type { TimelineHistoryEntry } from '../pg/history.js';
import { formatLsn, type Lsn } from '../pg/lsn.js';
import { parseSegmentName, segmentStartLsn } from '../pg/wal-names.js';
import { readSegmentHeader, segmentContentProblem } from '../wal/segment.js';

/** XLOG_PAGE_MAGIC of each major (xlog_internal.h); read from each major's initdb output for 14 to 17. */
export const XLOG_PAGE_MAGIC: Readonly<Record<number, number>> = { 10: 0xd097, 11: 0xd098, 12: 0xd101, 13: 0xd106, 14: 0xd10d, 15: 0xd110, 16: 0xd113, 17: 0xd116 };

const LONG_HEADER = 40;
const SHORT_HEADER = 24;
const DEFAULT_BLCKSZ = 8192;
/** More than this many bad pages in one segment are counted, not listed. */
const LISTED_PER_SEGMENT = 3;

export interface SegmentExpectation {
  name: string;
  segmentSize: number;
  /** backup.info's systemid. */
  systemId: string | null;
  /** PostgreSQL major (version / 10000), for the page magic. */
  major: number | undefined;
  /** The history of the name's timeline (empty for timeline 1). */
  history: TimelineHistoryEntry[];
}

/** A Writable sink for a decoded segment; problems() after it finished. */
export class SegmentPageCheck extends Writable {
  private offset = 0;
  private page = 0;
  private blcksz = DEFAULT_BLCKSZ;
  private header = Buffer.alloc(LONG_HEADER);
  private have = 0;
  private lastTli = 0;
  /** The first page with an all-zero header: the unused rest of a segment ended by a WAL switch. */
  private zeroFrom: Lsn | undefined;
  private readonly found: string[] = [];
  private bad = 0;
  private readonly timeline: number;
  private readonly start: Lsn;
  private firstPage: Buffer | undefined;

  constructor(private readonly expect: SegmentExpectation) {
    super();
    const seg = parseSegmentName(expect.name, expect.segmentSize);
    this.timeline = seg.timeline;
    this.start = segmentStartLsn(seg, expect.segmentSize);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let at = 0;
    while (at < chunk.length) {
      const pageStart = this.page * this.blcksz;
      const headerLength = this.page === 0 ? LONG_HEADER : SHORT_HEADER;
      const pos = this.offset + at;
      if (pos < pageStart) {
        at += Math.min(pageStart - pos, chunk.length - at);
        continue;
      }
      const take = Math.min(headerLength - this.have, chunk.length - at);
      chunk.copy(this.header, this.have, at, at + take);
      this.have += take;
      at += take;
      if (this.have === headerLength) {
        this.checkPage(this.header.subarray(0, headerLength));
        this.have = 0;
        this.page++;
      }
    }
    this.offset += chunk.length;
    cb();
  }

  /** What is wrong with the segment, one sentence per problem (empty when nothing is). */
  problems(): string[] {
    const out: string[] = [];
    const first = this.firstPage && readSegmentHeader(this.firstPage);
    const content = segmentContentProblem(this.expect.name, this.offset, first);
    if (content) out.push(content);
    else if (first) {
      if (first.segmentSize !== this.expect.segmentSize) out.push(`its page header gives a segment size of ${first.segmentSize} bytes, backup.info says ${this.expect.segmentSize}`);
      if (this.expect.systemId && first.systemIdentifier !== this.expect.systemId) {
        out.push(`its system identifier is ${first.systemIdentifier}, backup.info says ${this.expect.systemId}: it belongs to another cluster`);
      }
    }
    out.push(...this.found);
    if (this.bad > this.found.length) out.push(`and ${this.bad - this.found.length} more bad page header(s)`);
    return out;
  }

  private note(problem: string): void {
    this.bad++;
    if (this.found.length < LISTED_PER_SEGMENT) this.found.push(problem);
  }

  private checkPage(h: Buffer): void {
    const address = this.start + BigInt(this.page * this.blcksz);
    const where = `the page at ${formatLsn(address)}`;
    if (this.page === 0) {
      this.firstPage = Buffer.from(h);
      const blcksz = h.readUInt32LE(36);
      // A header too damaged to give a page size leaves the default; the first-page check names it.
      if (blcksz >= 1024 && blcksz <= 65536 && (blcksz & (blcksz - 1)) === 0) this.blcksz = blcksz;
    }
    // After a WAL switch PostgreSQL leaves the rest of the segment zeroed, headers included; from
    // the first such page on, a page with a header again means one was wiped in the middle.
    if (this.page > 0 && h.every((b) => b === 0)) {
      this.zeroFrom ??= address;
      return;
    }
    if (this.zeroFrom !== undefined) {
      this.note(`${where} has a page header after the zeroed page at ${formatLsn(this.zeroFrom)}`);
      return;
    }
    const magic = h.readUInt16LE(0);
    const want = this.expect.major === undefined ? undefined : XLOG_PAGE_MAGIC[this.expect.major];
    if (want !== undefined && magic !== want) {
      this.note(`${where} has magic 0x${magic.toString(16)}, PostgreSQL ${this.expect.major} writes 0x${want.toString(16)}`);
      return;
    }
    const pageAddress = h.readBigUInt64LE(8);
    if (pageAddress !== address) this.note(`${where} holds address ${formatLsn(pageAddress)}`);
    const tli = h.readUInt32LE(4);
    const problem = this.timelineProblem(tli, address);
    if (problem) this.note(`${where} is on timeline ${tli}: ${problem}`);
    this.lastTli = Math.max(this.lastTli, tli);
  }

  private timelineProblem(tli: number, address: Lsn): string | undefined {
    if (tli > this.timeline) return `later than timeline ${this.timeline} of the segment's name`;
    if (tli < this.lastTli) return `earlier than timeline ${this.lastTli} of a page before it`;
    if (tli === this.timeline) return undefined;
    const ended = this.expect.history.find((e) => e.timeline === tli);
    if (!ended) return `not an ancestor of timeline ${this.timeline} in its history`;
    if (address >= ended.switchpoint) return `timeline ${tli} ended at ${formatLsn(ended.switchpoint)} in the history of timeline ${this.timeline}`;
    return undefined;
  }
}
