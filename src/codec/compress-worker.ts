/**
 * Worker-thread side of CompressionPool: compresses one whole buffer per message and hashes the
 * result, then hands both buffers back by transfer.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { compressBuffer } from './index.js';
import { exclusiveArrayBuffer, type CompressJob, type CompressReply } from './pool-protocol.js';

const port = parentPort;
if (!port) throw new Error('compress-worker.js runs only as a worker thread');

port.on('message', (job: CompressJob) => {
  void (async () => {
    try {
      const data = Buffer.from(job.data);
      const body = job.codec === 'none' ? data : await compressBuffer(job.codec, data);
      const md5 = createHash('md5').update(body).digest('base64');
      const dataBuffer = exclusiveArrayBuffer(data);
      const bodyBuffer = body === data ? dataBuffer : exclusiveArrayBuffer(body);
      const reply: CompressReply = { id: job.id, data: dataBuffer, body: bodyBuffer, md5 };
      port.postMessage(reply, bodyBuffer === dataBuffer ? [dataBuffer] : [dataBuffer, bodyBuffer]);
    } catch (err) {
      port.postMessage({ id: job.id, error: (err as Error).message } satisfies CompressReply);
    }
  })();
});
