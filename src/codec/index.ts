/** Public entry point of the codec layer. */
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CodecName, StoredForm } from './types.js';
import { compressStream, decompressStream, type CompressOptions } from './streams.js';
import { decryptStream, encryptStream, type AgeKeys } from './age.js';
import { UserError } from '../util/errors.js';
import { decompressOffThread } from './decode-thread.js';

export { CODECS, CODEC_EXTENSION, codecExtension, splitCodecSuffix, type CodecName, type StoredForm } from './types.js';
export { CorruptDataError, CodecProcessError } from './errors.js';
export { startDecodeThread } from './decode-thread.js';
export { compressStream, decompressStream, type CompressOptions } from './streams.js';
export { parallelCompressStream, framedCompressStream, isFramedCodec, FRAMED_CODECS, MIN_FRAME, type FramedCodec, type FrameCompressor, type ParallelCompressOptions } from './parallel.js';
export { AGE_EXTENSION, AgeDecryptError, checkAgeKeys, decryptStream, encryptStream, identityRecipients, type AgeKeys } from './age.js';

/** What a Transform makes of one buffer, in the pieces it emitted. */
async function runThrough(input: Buffer, t: Transform): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([input]), t, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return out;
}

/** Whole-buffer helpers for small payloads (a WAL segment, a history file). */
export async function compressBuffer(codec: CodecName, data: Buffer, opts?: CompressOptions): Promise<Buffer> {
  return Buffer.concat(await runThrough(data, compressStream(codec, opts)));
}

export async function decompressBuffer(codec: CodecName, data: Buffer): Promise<Buffer> {
  return Buffer.concat(await runThrough(data, decompressStream(codec)));
}

/**
 * The Transforms that turn a stored object back into its bytes: decrypt, then decompress.
 * `what` names the object in errors; an encrypted object without keys to read it is a UserError.
 * `offThread`: decode on a worker thread (decode-thread.ts), for a restore's large objects.
 * `outputBuffer`: where zstd and snappy decode on this thread write (decompressStream), for a
 * caller that reuses its buffers.
 */
export function decodeStreams(
  form: StoredForm,
  keys: AgeKeys | undefined,
  what: string,
  { offThread = false, outputBuffer }: { offThread?: boolean; outputBuffer?: (size: number) => Buffer } = {},
): Transform[] {
  assertDecodable(form, keys, what);
  const decompress = offThread ? decompressOffThread(form.codec) : decompressStream(form.codec, outputBuffer);
  return form.encrypted ? [decryptStream(keys!, what), decompress] : [decompress];
}

const CLUSTER_KEYS_HINT =
  'name a Secret with an "identity" (AGE-SECRET-KEY-1...) or "passphrase" key in the Cluster annotation pgark.io/encryption (or the plugin parameter encryptionSecret)';

/** Throws unless there are keys to read the object with (pre-checks call it before anything is written). */
export function assertDecodable(form: StoredForm, keys: AgeKeys | undefined, what: string, hint = CLUSTER_KEYS_HINT): void {
  if (form.encrypted && (!keys || (keys.identities.length === 0 && keys.passphrase === undefined))) {
    throw new UserError(`${what} is age-encrypted, and no identity to decrypt it is configured`, hint);
  }
}

/** The stream that stores bytes: the compressor, then age encryption when keys are given (compressed bytes do not shrink once encrypted). */
export function encodeStream(compress: Transform, keys: AgeKeys | undefined): Transform {
  return keys ? encryptStream(keys, compress) : compress;
}

/** decodeStreams for a whole buffer. */
export async function decodeBuffer(form: StoredForm, data: Buffer, keys: AgeKeys | undefined, what: string): Promise<Buffer> {
  const [first, ...rest] = decodeStreams(form, keys, what);
  let out = Buffer.concat(await runThrough(data, first));
  for (const t of rest) out = Buffer.concat(await runThrough(out, t));
  return out;
}
