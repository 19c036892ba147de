/**
 * Builds a tar's member index (catalog/tar-index.ts) while the tar streams into its compressor:
 * it reads the tar's own headers as they pass, ends the compressor's frame at member boundaries
 * (restart points), and records each member's offsets and the stored range that holds it.
 *
 * Frames are grouped: a member boundary becomes a restart point once the frame holds the
 * compressor's minFrame bytes (1 MiB; every boundary when uncompressed), or when the member starting there is that large itself, so small files share frames
 * (each frame costs the codec a fresh dictionary) and a large file starts a frame of its own.
 * Header blocks are held back until the member's size is known (a few KiB at most); content
 * passes straight through. Memory: one small record per member.
 */
import { once } from 'node:events';
import { Writable } from 'node:stream';
import type { FrameCompressor } from '../codec/index.js';
import { Crc32c } from '../io/hash.js';
import type { TarIndex, TarIndexMember, TarMemberType } from '../catalog/tar-index.js';
import { TAR_INDEX_FORMAT } from '../catalog/tar-index.js';

const BLOCK = 512;

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

/** A numeric header field: octal text, or GNU base-256 when its high bit is set (sizes of 8 GiB and more). */
function headerNumber(buf: Buffer, start: number, length: number): number {
  if (buf[start] & 0x80) {
    let v = buf[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + buf[i];
    return v;
  }
  const text = cString(buf, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function memberType(flag: number): TarMemberType {
  if (flag === 0 || flag === 0x30 || flag === 0x37) return 'file';
  if (flag === 0x35) return 'directory';
  if (flag === 0x32) return 'symlink';
  return 'other';
}

/** PAX records ("<len> key=value\n"): only the names matter here. */
function paxNames(data: Buffer): { path?: string; link?: string } {
  const out: { path?: string; link?: string } = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = parseInt(data.toString('ascii', at, space), 10);
    if (space === -1 || !(len > 0)) break;
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') out.path = record.slice(eq + 1);
    if (record.slice(0, eq) === 'linkpath') out.link = record.slice(eq + 1);
    at += len;
  }
  return out;
}

type Pending = Omit<TarIndexMember, 'restart' | 'from' | 'to'>;

export class TarIndexer extends Writable {
  private readonly members: Pending[] = [];
  /** [tar offset, stored offset] of each restart point, in order. */
  private readonly restarts: [number, number][] = [[0, 0]];
  /** Tar bytes handed to the compressor. */
  private sent = 0;
  /** Header blocks (and extended-header data) not yet sent. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes still to read of the current unit: a header block, extended-header data, or content. */
  private want = BLOCK;
  private state: 'header' | 'extended' | 'content' | 'trailer' = 'header';
  /** The extended header being read: its type flag (0 for a pax global header, whose names are not kept) and content size. */
  private extended = { flag: 0, size: 0 };
  private names: { path?: string; link?: string } = {};
  /** The file whose content is passing, and its CRC-32C so far. */
  private current?: { member: Pending; crc: Crc32c };
  private contentLeft = 0;

  constructor(private readonly out: FrameCompressor) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.consume(chunk).then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Whatever is held past the last member (a truncated tar) still belongs in the object.
    this.send(Buffer.concat(this.held)).then(() => {
      this.out.end();
      callback();
    }, callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (err) this.out.destroy(err);
    callback(err);
  }

  private async send(buf: Buffer): Promise<void> {
    if (!buf.length) return;
    this.sent += buf.length;
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }

  private async consume(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'trailer') {
        await this.send(chunk.subarray(at));
        return;
      }
      const piece = chunk.subarray(at, at + this.want);
      at += piece.length;
      this.want -= piece.length;
      if (this.state === 'content') {
        this.current?.crc.update(piece.subarray(0, Math.max(0, Math.min(piece.length, this.contentLeft))));
        this.contentLeft -= piece.length;
        await this.send(piece);
        if (this.want === 0) this.memberDone();
        continue;
      }
      this.held.push(piece);
      this.heldBytes += piece.length;
      if (this.want === 0) await this.unitDone();
    }
  }

  /** A header block or an extended header's data is complete in `held`. */
  private async unitDone(): Promise<void> {
    const all = Buffer.concat(this.held);
    this.held = [all];
    if (this.state === 'extended') {
      const { flag, size } = this.extended;
      const content = all.subarray(all.length - padded(size), all.length - padded(size) + size);
      if (flag === 0x78) Object.assign(this.names, paxNames(content));
      if (flag === 0x4c) this.names.path = cString(content, 0, content.length);
      if (flag === 0x4b) this.names.link = cString(content, 0, content.length);
      this.state = 'header';
      this.want = BLOCK;
      return;
    }
    const block = all.subarray(all.length - BLOCK);
    if (block.every((b) => b === 0)) {
      // The end-of-archive blocks, and past them only padding: a frame of their own, so the last member's range ends with it.
      await this.restartHere(true);
      this.state = 'trailer';
      await this.send(all);
      this.held = [];
      this.heldBytes = 0;
      return;
    }
    const flag = block[156];
    const size = headerNumber(block, 124, 12);
    // pax extended (x), pax global (g), GNU long name (L) and long link (K) headers precede the member they describe.
    if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
      this.extended = { flag: flag === 0x67 ? 0 : flag, size };
      this.want = padded(size) || BLOCK;
      this.state = padded(size) ? 'extended' : 'header';
      return;
    }
    await this.member(block, flag, size);
  }

  private async member(block: Buffer, flag: number, size: number): Promise<void> {
    const type = memberType(flag);
    const prefix = block.toString('latin1', 257, 262) === 'ustar' ? cString(block, 345, 155) : '';
    const name = this.names.path ?? (prefix ? `${prefix}/${cString(block, 0, 100)}` : cString(block, 0, 100));
    const link = this.names.link ?? cString(block, 157, 100);
    const content = type === 'directory' || type === 'symlink' ? 0 : size;
    await this.restartHere(content >= this.out.minFrame);
    const header = this.sent;
    const end = header + this.heldBytes + padded(content);
    const member: Pending = {
      path: name.split('/').filter((p) => p !== '' && p !== '.').join('/'),
      type,
      mode: headerNumber(block, 100, 8),
      mtime: headerNumber(block, 136, 12),
      size: content,
      ...(type === 'symlink' ? { link } : {}),
      header,
      end,
    };
    this.members.push(member);
    await this.send(Buffer.concat(this.held));
    this.held = [];
    this.heldBytes = 0;
    this.names = {};
    this.current = type === 'file' ? { member, crc: new Crc32c() } : undefined;
    this.contentLeft = content;
    this.want = padded(content);
    this.state = 'content';
    if (!this.want) this.memberDone();
  }

  /** Ends the frame here when it holds minFrame bytes, or anyway when `force`d (a large member or the trailer follows). */
  private async restartHere(force: boolean): Promise<void> {
    const frame = this.sent - this.restarts[this.restarts.length - 1][0];
    if (frame === 0 || (frame < this.out.minFrame && !force)) return;
    // The stored offset is filled in once the compressor has emitted the frame; the tar keeps flowing meanwhile.
    const restart: [number, number] = [this.sent, NaN];
    this.restarts.push(restart);
    const ended = (err: Error | null | undefined, at: number) => (err ? this.destroy(err) : (restart[1] = at));
    if (!this.out.cutFrame(ended)) await once(this.out, 'drain');
  }

  private memberDone(): void {
    if (this.current) this.current.member.crc32c = this.current.crc.digest();
    this.current = undefined;
    this.state = 'header';
    this.want = BLOCK;
  }

  /** The index, once the object is stored: its stored size and SHA-256. */
  index(object: string, codec: string, stored: { size: number; sha256: string }): TarIndex {
    const { restarts } = this;
    if (restarts.some(([, at]) => Number.isNaN(at))) throw new Error(`the compressor of ${object} did not report where each frame starts`);
    let r = 0;
    const members = this.members.map((m): TarIndexMember => {
      while (r + 1 < restarts.length && restarts[r + 1][0] <= m.header) r++;
      let next = r + 1;
      while (next < restarts.length && restarts[next][0] < m.end) next++;
      return { ...m, restart: restarts[r][0], from: restarts[r][1], to: next < restarts.length ? restarts[next][1] : stored.size };
    });
    return { format: TAR_INDEX_FORMAT, version: 1, object, codec, size: stored.size, sha256: stored.sha256, members };
  }
}
