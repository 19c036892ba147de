/**
 * Worker-thread side of CompressionPool: runs encodeFile for one job at a time and replies with
 * its length and digest. No file content crosses to the main thread: the stored bytes stay in the
 * file they were read from, or in the spill file written here.
 */
import { parentPort } from 'node:worker_threads';
import { encodeFile } from './encode-file.js';
import { exposedGc, startBufferCollector } from '../util/gc.js';
import type { EncodeJob, EncodeReply } from './pool-protocol.js';

const port = parentPort;
if (!port) throw new Error('compress-worker.js runs only as a worker thread');

// Within one 16 MiB job the compressed pieces are garbage as fast as they pass: scavenged as they
// go (encodeFile), and what survives a scavenge collected as it grows (this isolate's own collector).
// Checked only while a job runs: an idle daemon's worker sleeps.
const collector = startBufferCollector(0, 4 * 1024 * 1024, 'tracked');

port.on('message', (job: EncodeJob) => {
  collector
    .during(encodeFile(job))
    .then(
      (encoded) => port.postMessage(encoded satisfies EncodeReply),
      (err: Error) => port.postMessage({ error: err.message } satisfies EncodeReply),
    )
    // The job's chunks and stream objects are garbage now (a zstd context goes back to its pool,
    // encode-zstd.ts); left to V8 they pile up to its 64 MiB external limit. A full collection of
    // this small heap takes milliseconds.
    .finally(() => exposedGc()());
});
