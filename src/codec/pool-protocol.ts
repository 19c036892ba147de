/** Messages between CompressionPool and its worker threads. */
import type { CodecName } from './types.js';
import type { AgeKeys } from './age.js';

export interface CompressJob {
  codec: CodecName;
  path: string;
  md5: boolean;
  /** Encrypt the compressed bytes for these keys' recipients (the .age form). */
  age?: AgeKeys;
  /** For 'none': a recycled buffer to read the file into when it is large enough (transferred). */
  into?: ArrayBuffer;
}

/** body holds the result in its first bodyLength bytes (a recycled buffer may be larger). */
export type CompressReply = { body: ArrayBuffer; bodyLength: number; md5?: string; size: number } | { error: string };
