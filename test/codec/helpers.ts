import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Random (incompressible) bytes followed by repetitive text: exercises stored and compressed paths. */
export function sampleData(randomSize: number, textSize: number): Buffer {
  const words = 'postgresql wal segment checkpoint tablespace relation vacuum tuple ';
  let text = '';
  for (let i = 0; text.length < textSize; i++) text += `${i} ${words.slice(i % 13)}\n`;
  return Buffer.concat([randomBytes(randomSize), Buffer.from(text.slice(0, textSize))]);
}

/** Irregular chunk sizes so codecs see writes that straddle their internal block boundaries. */
export function* irregularChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 7, 65535, 65537, 100_000, 3, 262_144, 999_999];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(off, off + n);
    off += n;
  }
}

/** Pipes data through transforms; a slow consumer (optional) exercises backpressure. */
export async function through(data: Buffer, transforms: Transform[], slowConsumer = false): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      if (slowConsumer) setImmediate(cb);
      else cb();
    },
  });
  await pipeline([Readable.from(irregularChunks(data)), ...transforms, sink]);
  return Buffer.concat(out);
}

/** Runs a reference tool with data on stdin; throws with its stderr when it fails. */
export function runTool(command: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(command, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

export const CHUNK = 64 * 1024;

/**
 * Feeds an endless source into a codec whose output nobody reads, waits until the source is no
 * longer pulled, and returns how many bytes the codec accepted: that is what it buffers.
 */
export async function acceptedWhileStalled(codec: Transform, chunk: () => Buffer | null): Promise<{ accepted: number; buffered: number }> {
  let pulled = 0;
  const source = new Readable({
    highWaterMark: CHUNK,
    read() {
      const c = chunk();
      if (c) pulled += c.length;
      this.push(c);
    },
  });
  source.pipe(codec);
  let last = -1;
  while (pulled !== last) {
    last = pulled;
    await sleep(300);
  }
  const buffered = codec.readableLength;
  source.unpipe(codec);
  source.destroy();
  codec.destroy();
  return { accepted: pulled, buffered };
}

/** A source for acceptedWhileStalled that yields `data` once, then ends. */
export function once(data: Buffer): () => Buffer | null {
  let sent = false;
  return () => {
    if (sent) return null;
    sent = true;
    return data;
  };
}
