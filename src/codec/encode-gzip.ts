/**
 * pgark's gzip encoder, on its own so that the WAL daemon, which deflates gzip pushes on its own
 * thread, loads zlib alone and not streams.ts's other codecs (their native modules).
 */
import zlib, { type Gzip } from 'node:zlib';

/**
 * pgark's gzip level, for base-backup tars and WAL segments alike, chosen as pgBackRest chooses its
 * compress-level defaults: per codec, where more CPU stops buying size. Measured on the bench
 * database (pgbench + hex text, 1 MiB blocks, docs/backups.md "Compression level"): levels 1-3
 * deflate about 160 MB/s per core and store 1.3-2.3 % more than level 6, which runs at 90 MB/s;
 * level 9 (Python tarfile's, so barman-cloud's) runs at 29 MB/s for 0.3 % less than 6. For WAL the
 * same holds (docs/wal-archiving.md): at level 6 gzip was most of a segment's 0.52 CPU seconds.
 * PGARK_COMPRESS_LEVEL overrides it for backups.
 */
export const GZIP_LEVEL = 3;

/**
 * Bytes zlib deflates into per output chunk. At its 16 KiB default a gzip WAL segment is some 350
 * chunks through every stage after it (hash, spill file); at 64 KiB a push took about 30 CPU ms less.
 */
const DEFLATE_CHUNK = 64 * 1024;

/** A gzip stream at `level` (default GZIP_LEVEL). */
export function gzipEncoder(level = GZIP_LEVEL): Gzip {
  return zlib.createGzip({ level, chunkSize: DEFLATE_CHUNK });
}
