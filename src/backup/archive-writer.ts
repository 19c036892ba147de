/**
 * One barman-cloud tar of a backup (data.tar[.ext] or <oid>.tar[.ext]) written as it is produced:
 * PAX tar (tar-stream) -> compression -> one streaming (multipart) upload. Each file's CRC-32C is
 * computed on the bytes as stored, for the backup_manifest; the SHA-256 of the object's own bytes
 * (compressed) is computed as they go to the store, for backup.info, so that a restore notices a
 * damaged object even where neither the manifest nor the codec would (tar padding, an lz4 match
 * offset that still points at equal bytes).
 *
 * With a compressor that has restart points (framedCompressStream), the tar passes through a
 * TarIndexer on its way, and its member index is stored beside it once the tar is (tar-index.ts).
 *
 * Member names follow barman (Python tarfile fed by os.walk): the root directory is ".", files at
 * the root are "./NAME", everything deeper is "dir/.../NAME".
 */
import type { Readable, Transform } from 'node:stream';
import tar from 'tar-stream';
import type { ObjectStore, PutOptions } from '../storage/types.js';
import { Crc32c, cryptoHasher, hash } from '../io/hash.js';
import type { SourceEntry } from './types.js';
import { splitCodecSuffix, type FrameCompressor } from '../codec/index.js';
import { writeTarIndex } from '../catalog/tar-index.js';
import { TarIndexer } from './tar-index.js';

export interface StoredFile {
  /** Path relative to the archive root (what backup_manifest lists, after the tablespace prefix). */
  path: string;
  size: number;
  mtime: Date;
  crc32c: number;
}

export interface ArchiveWriterOptions {
  store: ObjectStore;
  key: string;
  /** A FrameCompressor (framedCompressStream) makes the writer index the tar's members. */
  compressor: Transform | FrameCompressor;
  partSize: number;
  queueSize: number;
  /** Expected uncompressed size, so the store can pick a part size that fits its part limit. */
  sizeHint?: number;
  /** Called with the number of file bytes added (uncompressed), for progress. */
  onBytes?: (n: number) => void;
  /** Called with the number of bytes stored so far in this object. */
  onStored?: (n: number) => void;
  /** barmanObjectStore tags and data.encryption, applied to every object of the backup as barman does. */
  objectOptions?: Pick<PutOptions, 'tags' | 'encryption'>;
}

type TarHeader = Partial<tar.Header> & { name: string; mtime: Date };

export function tarMemberName(path: string): string {
  if (path === '') return '.';
  return path.includes('/') ? path : `./${path}`;
}

const ZERO_BLOCK = Buffer.alloc(64 * 1024);

export class ArchiveWriter {
  readonly key: string;
  readonly files: StoredFile[] = [];
  /** Uncompressed tar bytes of file content. */
  contentBytes = 0;
  private readonly pack = tar.pack();
  private readonly upload: Promise<{ size: number }>;
  /** SHA-256 of the bytes stored: recorded in backup.info, checked by every restore. */
  private readonly digest = hash(cryptoHasher('sha256'));
  private readonly indexer?: TarIndexer;
  private failure?: Error;
  /** Owner of the archive's root, given to the members pgark adds itself (backup_label, backup_manifest). */
  private owner = { uid: 0, gid: 0 };

  constructor(private readonly opts: ArchiveWriterOptions) {
    this.key = opts.key;
    const { compressor } = opts;
    this.pack.on('error', (err: Error) => compressor.destroy(err));
    compressor.on('error', (err: Error) => this.fail(err));
    this.digest.on('error', (err: Error) => this.fail(err));
    if ('cutFrame' in compressor) {
      this.indexer = new TarIndexer(compressor);
      this.indexer.on('error', (err: Error) => this.fail(err));
      this.pack.pipe(this.indexer);
      compressor.pipe(this.digest);
    } else {
      this.pack.pipe(compressor).pipe(this.digest);
    }
    this.upload = opts.store
      .put(opts.key, this.digest as Readable, {
        partSize: opts.partSize,
        queueSize: opts.queueSize,
        sizeHint: opts.sizeHint,
        onProgress: opts.onStored,
        ...opts.objectOptions,
      })
      .then((r) => ({ size: r.size }));
    this.upload.catch((err: Error) => this.fail(err));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.pack.destroy(err);
    this.indexer?.destroy(err);
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Adds one entry; resolves once its bytes are handed to the compressor. */
  async add(entry: SourceEntry): Promise<void> {
    this.check();
    const header = { name: tarMemberName(entry.path), mode: entry.mode, mtime: entry.mtime, uid: entry.uid ?? 0, gid: entry.gid ?? 0 };
    if (entry.type === 'directory') {
      await this.whole({ ...header, type: 'directory' });
    } else if (entry.type === 'symlink') {
      await this.whole({ ...header, type: 'symlink', linkname: entry.linkname });
    } else {
      await this.file(entry.path, entry.size, header, entry.body);
    }
  }

  /** Adds a small in-memory file (backup_label, backup_manifest). */
  async addBuffer(path: string, data: Buffer, mode = 0o600): Promise<void> {
    await this.file(path, data.length, { name: tarMemberName(path), mode, mtime: new Date(), uid: this.owner.uid, gid: this.owner.gid }, [data]);
  }

  private whole(header: Partial<tar.Header> & { name: string }): Promise<void> {
    if (header.type === 'directory' && header.name === '.') this.owner = { uid: header.uid ?? 0, gid: header.gid ?? 0 };
    return new Promise((resolve, reject) => this.pack.entry(header, (err) => (err ? reject(err) : resolve())));
  }

  private async file(path: string, size: number, header: TarHeader, body: AsyncIterable<Uint8Array> | Uint8Array[]): Promise<void> {
    let finished!: Promise<void>;
    const sink = await new Promise<ReturnType<tar.Pack['entry']>>((resolve) => {
      finished = new Promise<void>((ok, ko) => {
        resolve(this.pack.entry({ ...header, size, type: 'file' }, (err) => (err ? ko(err) : ok())));
      });
    });
    finished.catch(() => undefined);
    const crc = new Crc32c();
    let written = 0;
    const put = async (chunk: Uint8Array) => {
      crc.update(chunk);
      written += chunk.length;
      this.opts.onBytes?.(chunk.length);
      if (!sink.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            sink.off('error', onError);
            resolve();
          };
          const onError = (e: Error) => {
            sink.off('drain', onDrain);
            reject(e);
          };
          sink.once('drain', onDrain);
          sink.once('error', onError);
        });
      }
      this.check();
    };
    for await (const raw of body) {
      if (written >= size) continue; // the source grew past the size announced in the header
      const chunk = raw.length > size - written ? raw.subarray(0, size - written) : raw;
      await put(chunk);
    }
    // The source shrank: pad with zeros to the announced size (WAL replay rewrites these pages).
    while (written < size) await put(ZERO_BLOCK.subarray(0, Math.min(ZERO_BLOCK.length, size - written)));
    // streamx's typings want an argument that its end() does not need.
    (sink as unknown as { end(): void }).end();
    await finished;
    this.contentBytes += size;
    this.files.push({ path, size, mtime: header.mtime, crc32c: crc.digest() });
  }

  /** Ends the tar and waits until the object is completely stored. Returns the stored (compressed) size and its SHA-256. */
  async finish(): Promise<{ size: number; sha256: string }> {
    this.check();
    this.pack.finalize();
    const { size } = await this.upload;
    this.check();
    const stored = { size, sha256: this.digest.digest };
    if (this.indexer) {
      const name = this.key.slice(this.key.lastIndexOf('/') + 1);
      await writeTarIndex(this.opts.store, this.key, this.indexer.index(name, splitCodecSuffix(name).codec, stored), this.opts.objectOptions ?? {});
    }
    return stored;
  }

  /** Stops the upload (the store discards an unfinished multipart upload). */
  abort(err: Error): void {
    this.fail(err);
    this.opts.compressor.destroy(err);
    this.digest.destroy(err);
  }
}
