/** Messages between CompressionPool and its worker threads. */
import type { EncodedFile, EncodeJob } from './encode-file.js';

export type EncodeReply = EncodedFile | { error: string };
export type { EncodeJob };
