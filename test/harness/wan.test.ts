/**
 * The shaping proxy that makes the loopback store look like a cloud one (issue 18, benchmarks'
 * --wan): its link timetable is checked on given times, never by timing a transfer; live transfers
 * check only that bytes pass unchanged and that what it holds stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { DEFAULT_WAN, LinkSchedule, listenLoopback, shapedWindow, startProxy } from './proxy.js';
import { startS3rver } from './s3rver.js';
import { startStore } from './stores.js';
import { openObjectStore } from '../../src/storage/open.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-6, `${a} != ${b}`);

test('a 4 MB burst through a 40 MB/s, 25 ms link is all there 100 ms of sending plus half a round trip later', () => {
  const link = new LinkSchedule(DEFAULT_WAN, 0);
  const chunk = 65536;
  let sent = 0;
  let first = -1;
  let last = 0;
  while (sent < 4_000_000) {
    const n = Math.min(chunk, 4_000_000 - sent);
    last = link.arrival(n, 0);
    if (first < 0) first = last;
    sent += n;
  }
  close(first, chunk / 40_000 + 12.5);
  close(last, 100 + 12.5);
  // An idle link sends at once: only the bytes' own time and the half round trip.
  close(link.arrival(40_000, 500), 500 + 1 + 12.5);
  // A busy one queues behind what it has not sent yet.
  close(link.arrival(40_000, 500.5), 500 + 2 + 12.5);
});

test('a request/response exchange costs a round trip, plus one more for a new connection', () => {
  const opened = 0;
  const up = new LinkSchedule(DEFAULT_WAN, opened + DEFAULT_WAN.rttMs);
  const down = new LinkSchedule(DEFAULT_WAN, opened);
  const tiny = 40; // 1 microsecond on the wire
  const requestAtServer = up.arrival(tiny, 0);
  const responseAtClient = down.arrival(tiny, requestAtServer);
  close(responseAtClient, 2 * DEFAULT_WAN.rttMs + 0.002);
  // The next exchange on the same connection: one round trip.
  const again = down.arrival(tiny, up.arrival(tiny, 100));
  close(again - 100, DEFAULT_WAN.rttMs + 0.002);
});

test('the shaping window is twice the bandwidth-delay product, at least 4 MiB', () => {
  assert.equal(shapedWindow(DEFAULT_WAN), 4 << 20);
  assert.equal(shapedWindow({ rttMs: 100, bytesPerSecond: 1e9 }), 200_000_000);
});

/** A target that hashes what it receives and, once the client has finished, answers `response`. */
async function startTarget(response: Buffer) {
  let received!: (hex: string) => void;
  const digest = new Promise<string>((r) => (received = r));
  const server = createServer((s: Socket) => {
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => {
      received(h.digest('hex'));
      s.end(response);
    });
  });
  return { port: await listenLoopback(server), digest, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Writes `request` through port, half-closes, and hashes everything that comes back. */
function roundTrip(port: number, request: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = connect(port, '127.0.0.1');
    s.on('data', (d) => h.update(d));
    s.on('end', () => resolve(h.digest('hex')));
    s.on('error', reject);
    s.end(request);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a shaped connection passes bytes unchanged both ways and holds no more than its window', async () => {
  // 12 MiB each way at 50 MB/s: the sender outruns the link, so the window has to hold it back.
  const shape = { rttMs: 2, bytesPerSecond: 50e6 };
  const request = randomBytes(12 << 20);
  const response = randomBytes(12 << 20);
  const target = await startTarget(response);
  const proxy = await startProxy(target.port, { shape });
  try {
    const back = await roundTrip(proxy.port, request);
    assert.equal(await target.digest, sha(request));
    assert.equal(back, sha(response));
    assert.ok(proxy.peakQueued > 1 << 20, `the link held ${proxy.peakQueued} bytes: shaping did not queue`);
    assert.ok(proxy.peakQueued <= shapedWindow(shape) + (1 << 20), `the link held ${proxy.peakQueued} bytes, over its window`);
  } finally {
    await proxy.close();
    await target.close();
  }
});

test('the cut-after budget still applies to shaped connections', async () => {
  const target = await startTarget(Buffer.alloc(0));
  const proxy = await startProxy(target.port, { shape: { rttMs: 1, bytesPerSecond: 1e9 } });
  try {
    proxy.cutAfter(64 << 10);
    const request = randomBytes(4 << 20);
    // The client sees a reset or an early end, whichever the kernel reports first.
    await roundTrip(proxy.port, request).catch(() => 'cut');
    assert.equal(proxy.cuts, 1);
  } finally {
    await proxy.close();
    await target.close();
  }
});

test('an https store behind the shaping process: objects round-trip through its endpoint, not s3rver\'s', async () => {
  const s3 = await startS3rver({ tls: true, wan: { rttMs: 4, bytesPerSecond: 200e6 } });
  const ts = await startStore('s3-tls', { s3rver: s3, prefix: 'wan' });
  const store = await openObjectStore(ts.resolved());
  try {
    assert.notEqual(s3.port, s3.backendPort);
    assert.match(s3.endpoint, new RegExp(`^https://127\\.0\\.0\\.1:${s3.port}$`));
    const body = randomBytes(3 << 20);
    await store.put('wan/object', body);
    assert.equal(sha(await store.getBuffer('wan/object')), sha(body));
  } finally {
    await store.close();
    await ts.stop();
    await s3.stop();
  }
});
