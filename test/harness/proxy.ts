/**
 * A loopback TCP proxy for failure tests: forwards every connection to a target port and can
 * cut all live connections on demand, or once a given number of bytes has flowed (to kill a
 * download or an upload mid-stream).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

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
  close(): Promise<void>;
}

export interface ProxyOptions {
  targetHost?: string;
  /** Keep a copy of client-to-target bytes (small transfers only). */
  capture?: boolean;
}

export async function startProxy(targetPort: number, opts: ProxyOptions = {}): Promise<TcpProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const captured: Buffer[] = [];
  const live = new Set<Socket>();
  let accepted = 0;
  let cuts = 0;
  let budget: number | undefined;
  let fromTarget = 0;

  const cutAll = () => {
    cuts++;
    budget = undefined;
    for (const s of live) s.destroy();
    live.clear();
  };

  /** Copies from -> to with backpressure, charging the armed byte budget in both directions. */
  const forward = (from: Socket, to: Socket, record: boolean, counts = false) => {
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
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => to.end());
  };

  const server = createServer((client) => {
    accepted++;
    const upstream = connect(targetPort, targetHost);
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    forward(client, upstream, opts.capture === true);
    forward(upstream, client, false, true);
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
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
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
