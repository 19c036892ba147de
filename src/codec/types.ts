/** Compression codecs known to barman-cloud (none, gzip, bzip2, snappy, lz4, xz, zstd) and their key suffixes. */
export const CODECS = ['none', 'gzip', 'bzip2', 'snappy', 'lz4', 'xz', 'zstd'] as const;
export type CodecName = (typeof CODECS)[number];

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
