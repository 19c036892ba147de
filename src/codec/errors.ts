import { PgarkError } from '../util/errors.js';

/** Compressed input that cannot be decoded: corrupt, truncated, or not in the expected format. */
export class CorruptDataError extends PgarkError {
  constructor(
    codec: string,
    /** What was wrong, without the codec: a decoder on a worker thread sends it back to be raised again. */
    readonly detail: string,
  ) {
    super(`${codec} data cannot be decoded: ${detail}`, 1, 'the object may be corrupt, truncated, or compressed with another codec');
  }
}

/** A codec helper program (bzip2, xz, lz4) failed to run or exited with an error. */
export class CodecProcessError extends PgarkError {
  constructor(message: string) {
    super(message, 1);
  }
}
