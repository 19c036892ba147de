/**
 * Codecs run as external programs (bzip2, xz, lz4 decoding) on the shared child-process stream.
 * These programs print nothing on success, so stderr output counts as a failure too.
 */
import { ChildStream } from '../io/child.js';
import { CodecProcessError, CorruptDataError } from './errors.js';

/** Decoders report failures as corrupt input; encoders as tool failures. */
export function codecProcess(codec: string, command: string, args: string[], decoding: boolean): ChildStream {
  return new ChildStream(command, args, {
    stderrIsFailure: true,
    error: (detail) => (decoding ? new CorruptDataError(codec, detail) : new CodecProcessError(`${codec} compression failed: ${detail}`)),
  });
}
