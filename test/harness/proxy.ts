/**
 * A loopback TCP proxy: forwards every connection to a target port. For failure tests it can cut
 * all live connections on demand, or once a given number of bytes has flowed (to kill a download
 * or an upload mid-stream). With a `shape` it behaves like a wide-area link to a cloud store
 * (benchmarks' --wan): each direction of each connection is a link of limited bandwidth whose bytes
 * arrive half a round trip after they leave, so every request/response exchange costs a round
 * trip, a new connection one more (its handshake), and TLS handshakes theirs, as on a real network.
 * It works below TLS, so https stores are shaped the same way as plain ones.
 *
 * This file is also an entry point: benchmarks run the shaping proxy as its own process
 * (startShapedProxyProcess) so its timers do not share an event loop with the tool being measured.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startModuleProcess } from './server-process.js';

/** A wide-area link: round-trip time and per-connection bandwidth in each direction. */
export interface WanShape {
  rttMs: number;
  bytesPerSecond: number;
}

/** What issue 18 asks of a store "shaped like a real cloud": 25 ms away, 40 MB/s a connection. */
export const DEFAULT_WAN: WanShape = { rttMs: 25, bytesPerSecond: 40e6 };

/**
 * The timetable of one direction of one connection: a chunk leaves once the link has sent what
 * came before it, takes len/bandwidth to send, and arrives half a round trip later. Pure (times
 * are passed in), so tests check the schedule without waiting on clocks.
 */
export class LinkSchedule {
  private free: number;
  /** `openedAt`: when the link can first send (a client's first bytes wait for the TCP handshake). */
  constructor(
    private readonly shape: WanShape,
    openedAt: number,
  ) {
    this.free = openedAt;
  }

  /** When `bytes` handed to the link at `now` (ms) have all reached the far end (ms). */
  arrival(bytes: number, now: number): number {
    this.free = Math.max(now, this.free) + (bytes * 1000) / this.shape.bytesPerSecond;
    return this.free + this.shape.rttMs / 2;
  }
}

/**
 * Bytes one direction may hold before its sender is paused: twice the bandwidth-delay product
 * (a cloud store's autotuned TCP window), at least 4 MiB, so shaping never holds more than that.
 */
export function shapedWindow(shape: WanShape): number {
  return Math.max(4 << 20, Math.ceil((2 * shape.bytesPerSecond * shape.rttMs) / 1000));
}

export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Times cutAll() ran (by hand or by an armed cutAfter). */
  readonly cuts: number;
  /** Destroys every live connection (both sides). */
  cutAll(): void;
  /** Cuts all connections once `bytes` more bytes have flowed (either direction); one-shot. */
  cutAfter(bytes: number): void;
  /** Bytes the target sent to clients so far (responses: what a download transferred). */
  readonly bytesFromTarget: number;
  /** Everything clients sent so far (only with `capture`), to check what went on the wire. */
  sentByClients(): Buffer;
  /** Most bytes any one shaped direction held at once (bounded by shapedWindow plus one chunk). */
  readonly peakQueued: number;
  close(): Promise<void>;
}

export interface ProxyOptions {
  targetHost?: string;
  /** Keep a copy of client-to-target bytes (small transfers only). */
  capture?: boolean;
  /** Delay and cap every connection like a wide-area link. */
  shape?: WanShape;
}

export async function startProxy(targetPort: number, opts: ProxyOptions = {}): Promise<TcpProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const captured: Buffer[] = [];
  const live = new Set<Socket>();
  let accepted = 0;
  let cuts = 0;
  let budget: number | undefined;
  let fromTarget = 0;
  let peakQueued = 0;

  const cutAll = () => {
    cuts++;
    budget = undefined;
    for (const s of live) s.destroy();
    live.clear();
  };

  /** Copies from -> to with backpressure, charging the armed byte budget in both directions. */
  const forward = (from: Socket, to: Socket, record: boolean, counts: boolean, link?: LinkSchedule) => {
    const send = link && opts.shape ? shapedSender(from, to, link, shapedWindow(opts.shape), (q) => (peakQueued = Math.max(peakQueued, q))) : undefined;
    from.on('data', (chunk: Buffer) => {
      if (record) captured.push(chunk);
      if (counts) fromTarget += chunk.length;
      if (budget !== undefined) {
        budget -= chunk.length;
        if (budget <= 0) {
          // Forward nothing more: both peers see the connection die mid-transfer.
          cutAll();
          return;
        }
      }
      if (send) return send.push(chunk);
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => (send ? send.end() : to.end()));
  };

  // Half-open sockets: an end in one direction is forwarded (after any bytes the link still holds)
  // while the other direction goes on, so an answer in flight is never cut off by its peer's FIN.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    const upstream = connect({ port: targetPort, host: targetHost, allowHalfOpen: true });
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop).on('close', (hadError) => (hadError ? drop() : live.delete(s)));
    }
    const now = performance.now();
    const shape = opts.shape;
    forward(client, upstream, opts.capture === true, false, shape && new LinkSchedule(shape, now + shape.rttMs));
    forward(upstream, client, false, true, shape && new LinkSchedule(shape, now));
  });
  const port = await listenLoopback(server);
  return {
    port,
    get accepted() {
      return accepted;
    },
    get cuts() {
      return cuts;
    },
    get bytesFromTarget() {
      return fromTarget;
    },
    cutAll,
    cutAfter: (bytes) => {
      budget = bytes;
    },
    sentByClients: () => Buffer.concat(captured),
    get peakQueued() {
      return peakQueued;
    },
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Holds each chunk until `link` says it has arrived, then writes it to `to` in order. The sender
 * is paused while more than `window` bytes are held, and delivery waits on `to`'s own backpressure.
 */
function shapedSender(from: Socket, to: Socket, link: LinkSchedule, window: number, onQueued: (bytes: number) => void) {
  const queue: { chunk: Buffer; due: number }[] = [];
  let queued = 0;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let blocked = false;

  const flush = () => {
    timer = undefined;
    while (queue.length > 0 && !blocked && !to.destroyed) {
      const wait = queue[0].due - performance.now();
      if (wait > 0) {
        timer = setTimeout(flush, wait);
        return;
      }
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      if (from.isPaused() && queued <= window / 2) from.resume();
      if (!to.write(chunk)) {
        blocked = true;
        to.once('drain', () => {
          blocked = false;
          flush();
        });
      }
    }
    if (queue.length === 0 && ended) to.end();
  };
  // Once the receiver is gone nothing held can be delivered; the sender may close first and must not.
  to.once('close', () => clearTimeout(timer));

  return {
    push(chunk: Buffer) {
      queue.push({ chunk, due: link.arrival(chunk.length, performance.now()) });
      queued += chunk.length;
      onQueued(queued);
      if (queued > window) from.pause();
      if (timer === undefined && !blocked) flush();
    },
    end() {
      ended = true;
      if (timer === undefined && !blocked) flush();
    },
  };
}

export interface ShapedProxyProcess {
  port: number;
  stop(): Promise<void>;
}

/** Runs a shaping proxy to `targetPort` as its own process; resolves once it listens. */
export function startShapedProxyProcess(targetPort: number, shape: WanShape): Promise<ShapedProxyProcess> {
  return startModuleProcess(fileURLToPath(import.meta.url), 'PGARK_WAN_PROXY', { targetPort, shape }, 'shaping proxy');
}

/** Listens on a free loopback port; resolves with the port. */
export async function listenLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

if (process.env.PGARK_WAN_PROXY && process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = JSON.parse(process.env.PGARK_WAN_PROXY) as { targetPort: number; shape: WanShape };
  const proxy = await startProxy(config.targetPort, { shape: config.shape });
  process.stdout.write(`listening ${proxy.port}\n`);
  process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
}
