/**
 * Compression codecs known to barman-cloud (none, gzip, bzip2, snappy, lz4, xz, zstd), their key
 * suffixes and the parsing of stored names. No codec is loaded here: the WAL daemon names and lists
 * objects through this module alone, and loads a codec's native module only when it runs it.
 */
export const CODECS = ['none', 'gzip', 'bzip2', 'snappy', 'lz4', 'xz', 'zstd'] as const;
export type CodecName = (typeof CODECS)[number];

/**
 * Whether the codec's encoder (streams.ts compressStream) is done with an input chunk when it calls
 * back for it, so that the chunk's memory may be read into again: zlib works the chunk into its
 * window on the thread pool, ZstdEncoder compresses it whole, and snappy's and lz4's frame encoders
 * copy it into their own block (codec/blocks.ts BlockAccumulator) before calling back
 * (test/codec/encoder-input-reuse.test.ts). The child-process codecs are not asked. (The
 * off-thread decoders' rule is in decode-protocol.ts.) Here, beside the names, so that a worker can
 * ask without loading every codec.
 */
export function encoderConsumesInputAtCallback(codec: CodecName): boolean {
  return codec === 'gzip' || codec === 'zstd' || codec === 'snappy' || codec === 'lz4';
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

/** The key suffix of an encrypted object, after the codec's (data.tar.zst.age). */
export const AGE_EXTENSION = '.age';

/** How an object is stored: compressed with a codec, then possibly age-encrypted (the .age suffix). */
export interface StoredForm {
  codec: CodecName;
  encrypted: boolean;
}

/** The key suffix for a codec ('' for none), then .age when encrypted. */
export function codecExtension(codec: CodecName, encrypted = false): string {
  return CODEC_EXTENSION[codec] + (encrypted ? AGE_EXTENSION : '');
}

/**
 * Splits the suffixes off a file or key name: "x.tar.gz" -> {base: "x.tar", codec: "gzip"},
 * "x.tar.zst.age" -> {base: "x.tar", codec: "zstd", encrypted: true}. Every reader finds an
 * object's form here, so each one understands encrypted objects.
 */
export function splitCodecSuffix(name: string): { base: string } & StoredForm {
  const encrypted = name.endsWith(AGE_EXTENSION) && name.length > AGE_EXTENSION.length;
  const plain = encrypted ? name.slice(0, -AGE_EXTENSION.length) : name;
  for (const codec of CODECS) {
    const ext = CODEC_EXTENSION[codec];
    if (ext && plain.endsWith(ext) && plain.length > ext.length) return { base: plain.slice(0, -ext.length), codec, encrypted };
  }
  return { base: plain, codec: 'none', encrypted };
}
