/** Compression codecs known to barman-cloud (none, gzip, bzip2, snappy, lz4, xz, zstd) and their key suffixes. */
export const CODECS = ['none', 'gzip', 'bzip2', 'snappy', 'lz4', 'xz', 'zstd'] as const;
export type CodecName = (typeof CODECS)[number];

/**
 * Whether the codec's encoder (streams.ts compressStream) is done with an input chunk when it calls
 * back for it, so that the chunk's memory may be read into again: zlib works the chunk into its
 * window on the thread pool, ZstdEncoder compresses it whole. Snappy's and lz4's frame encoders are
 * fed fresh chunks; the child-process codecs are not asked. (The off-thread decoders' rule is in
 * decode-protocol.ts.) Here, beside the names, so that a worker can ask without loading every codec.
 */
export function encoderConsumesInputAtCallback(codec: CodecName): boolean {
  return codec === 'gzip' || codec === 'zstd';
}

/** Suffix barman-cloud appends to a WAL or tar key for each codec. */
export const CODEC_EXTENSION: Record<CodecName, string> = {
  none: '',
  gzip: '.gz',
  bzip2: '.bz2',
  snappy: '.snappy',
  lz4: '.lz4',
  xz: '.xz',
  zstd: '.zst',
};
