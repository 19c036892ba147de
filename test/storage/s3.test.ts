import { test } from 'node:test';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { openObjectStore } from '../../src/storage/open.js';
import { classifyStorageError } from '../../src/storage/errors.js';
import { Readable } from 'node:stream';
import { startStore } from '../harness/stores.js';
import { startProxy } from '../harness/proxy.js';
import { runContract } from './contract.js';
import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { errorFacts } from '../../src/storage/errors.js';
import type { TestStore } from '../harness/stores.js';

runContract('s3', 'full');
// pgBackRest-style https endpoint with a private CA given as endpointCA.
runContract('s3-tls', 'basic');

test('inheritFromIAMRole uses the SDK default credential chain (environment keys here)', async () => {
  const ts = await startStore('s3');
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = ts.s3rver!.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = ts.s3rver!.secretAccessKey;
  const store = await openObjectStore({ ...ts.resolved(), s3: { inheritFromIAMRole: true } });
  try {
    await store.put('iam/probe', Buffer.from('via default chain'));
    assert.equal((await store.getBuffer('iam/probe')).toString(), 'via default chain');
    process.env.AWS_ACCESS_KEY_ID = 'NOT-A-KNOWN-KEY';
    // Credentials are resolved once per client and cached, so a fresh store sees the changed chain.
    const other = await openObjectStore({ ...ts.resolved(), s3: { inheritFromIAMRole: true } });
    await assert.rejects(other.head('iam/probe'), (e) => classifyStorageError(e) === 'auth');
    await other.close();
  } finally {
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    await store.close();
    await ts.stop();
  }
});

test('an https endpoint with a private CA is refused without endpointCA, with a hint naming it', async () => {
  const ts = await startStore('s3-tls');
  const store = await openObjectStore({ ...ts.resolved(), endpointCA: undefined });
  try {
    const err = await store.put('tls/probe', Buffer.from('x')).then(() => undefined, (e: Error & { hint?: string }) => e);
    assert.ok(err, 'put succeeded against an untrusted certificate');
    assert.equal(classifyStorageError(err), 'unreachable');
    assert.match(err.hint ?? '', /endpointCA/);
  } finally {
    await store.close();
    await ts.stop();
  }
});

test('an https store with endpointCA builds its trust store once, not for every connection it opens', async () => {
  const ts = await startStore('s3-tls');
  // Counted, not replaced: Node's TLS client calls this export for each connection given no secureContext.
  const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  const real = tls.createSecureContext;
  let built = 0;
  tls.createSecureContext = (options) => (built++, real(options));
  try {
    const store = await openObjectStore(ts.resolved());
    try {
      const bodies = Array.from({ length: 4 }, (_, i) => randomBytes(1000 + i));
      await Promise.all(bodies.map((b, i) => store.put(`ctx/${i}`, b)));
      // Four at once: four connections.
      const got = await Promise.all(bodies.map((_, i) => store.getBuffer(`ctx/${i}`)));
      got.forEach((g, i) => assert.ok(g.equals(bodies[i])));
      assert.equal(built, 0, 'no connection parses the trust store (~140 certificates) again: the store built it once');
    } finally {
      await store.close();
    }
  } finally {
    tls.createSecureContext = real;
    await ts.stop();
  }
});

test('server-side encryption and tags go on the wire for single and multipart puts (s3rver ignores both)', async () => {
  const ts = await startStore('s3');
  const proxy = await startProxy(ts.s3rver!.port, { capture: true });
  const r = ts.resolved();
  r.endpointURL = `http://127.0.0.1:${proxy.port}`;
  const store = await openObjectStore(r);
  try {
    await store.put('sse/single', Buffer.from('x'), { encryption: 'AES256', tags: { team: 'db', 'a b': 'c&d' } });
    const MiB = 1024 * 1024;
    await store.put('sse/multi', Readable.from([Buffer.alloc(6 * MiB, 1)]), { encryption: 'aws:kms', tags: { team: 'db' }, partSize: 5 * MiB });
    const headers = proxy
      .sentByClients()
      .toString('latin1')
      .split('\r\n')
      // A request line can follow the previous request's body without a line break.
      .map((l) => l.replace(/^.*?(?=(PUT|POST) \/)/, ''))
      .filter((l) => /^(PUT|POST) |^x-amz-(server-side-encryption|tagging):/i.test(l));
    const single = headers.findIndex((l) => /^PUT \/pgark\/t-[0-9a-f]+\/sse\/single/.test(l));
    const create = headers.findIndex((l) => /^POST \/pgark\/t-[0-9a-f]+\/sse\/multi\?uploads/.test(l));
    assert.ok(single >= 0 && create >= 0, headers.join('\n'));
    assert.deepEqual(headers.slice(single + 1, single + 3).map((l) => l.toLowerCase()).sort(), ['x-amz-server-side-encryption: aes256', 'x-amz-tagging: team=db&a+b=c%26d']);
    assert.deepEqual(headers.slice(create + 1, create + 3).map((l) => l.toLowerCase()).sort(), ['x-amz-server-side-encryption: aws:kms', 'x-amz-tagging: team=db']);
  } finally {
    await store.close();
    await proxy.close();
    await ts.stop();
  }
});

/** An SDK client of its own for the test store (not pgark's), set up for S3-compatible stores unless `config` says otherwise. */
function rawClient(ts: TestStore, config: Partial<S3ClientConfig> = {}): S3Client {
  const s3 = ts.s3rver!;
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    ...config,
  });
}

const objectKey = (ts: TestStore, key: string) => `${ts.destinationPath.split('/').pop()}/${key}`;

async function failureOf(p: Promise<unknown>): Promise<{ status?: number; codes: string[] }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err, 'the request succeeded');
  return errorFacts(err);
}

test('the S3 front verifies every signature: a tampered one is refused before it reaches s3rver', async () => {
  const ts = await startStore('s3');
  const client = rawClient(ts);
  const tampering = rawClient(ts);
  tampering.middlewareStack.add(
    (next) => (args) => {
      const r = args.request as { headers: Record<string, string> };
      // The deserialize step runs after signing: flip the signature's last hex digit.
      r.headers.authorization = r.headers.authorization.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
      return next(args);
    },
    { step: 'deserialize', name: 'tamperSignature' },
  );
  try {
    const put = (c: S3Client, key: string) => c.send(new PutObjectCommand({ Bucket: ts.s3rver!.bucket, Key: objectKey(ts, key), Body: 'x' }));
    await put(client, 'sig/honest');
    const refused = await failureOf(put(tampering, 'sig/tampered'));
    assert.equal(refused.status, 403);
    assert.ok(refused.codes.includes('SignatureDoesNotMatch'), refused.codes.join());
    const store = await openObjectStore(ts.resolved());
    assert.equal(await store.head('sig/tampered'), undefined, 'the refused request never reached s3rver');
    assert.equal((await store.head('sig/honest'))?.size, 1);
    await store.close();
  } finally {
    client.destroy();
    tampering.destroy();
    await ts.stop();
  }
});

test("the S3 front refuses the SDK's default checksums (x-amz-checksum-*, aws-chunked) as strict S3-compatible stores do", async () => {
  const ts = await startStore('s3');
  const sdkDefaults = rawClient(ts, { requestChecksumCalculation: 'WHEN_SUPPORTED' });
  try {
    const bucket = ts.s3rver!.bucket;
    const single = await failureOf(sdkDefaults.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey(ts, 'ck/buffer'), Body: Buffer.from('x') })));
    assert.equal(single.status, 400);
    assert.ok(single.codes.includes('InvalidArgument'), single.codes.join());
    const streamed = await failureOf(
      sdkDefaults.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey(ts, 'ck/stream'), Body: Readable.from([Buffer.from('streamed')]), ContentLength: 8 })),
    );
    assert.equal(streamed.status, 400);
    // pgark's own client sends what such a store accepts, deletes (which require a checksum) included.
    const store = await openObjectStore(ts.resolved());
    await store.put('ck/pgark', Buffer.from('x'));
    await store.delete(['ck/pgark']);
    assert.equal(await store.head('ck/pgark'), undefined);
    await store.close();
  } finally {
    sdkDefaults.destroy();
    await ts.stop();
  }
});

test('If-None-Match runs on the S3 front: a second conditional create is refused, and racing pgark creators have one winner', async () => {
  const ts = await startStore('s3');
  const client = rawClient(ts);
  const store = await openObjectStore(ts.resolved());
  try {
    const create = (body: string) => client.send(new PutObjectCommand({ Bucket: ts.s3rver!.bucket, Key: objectKey(ts, 'inm/once'), Body: body, IfNoneMatch: '*' }));
    await create('first');
    const second = await failureOf(create('second'));
    assert.equal(second.status, 412);
    assert.equal((await store.getBuffer('inm/once')).toString(), 'first');
    // Every racer's HEAD finds nothing, so the outcome rests on If-None-Match alone.
    const bodies = Array.from({ length: 6 }, (_, i) => Buffer.from(`racer ${i} `.repeat(1000)));
    const results = await Promise.all(bodies.map((b) => store.put('inm/race', b, { ifAbsent: true })));
    const winners = results.map((r, i) => (r.status === 'created' ? i : -1)).filter((i) => i >= 0);
    assert.equal(winners.length, 1, `winners: ${winners}`);
    assert.ok(results.every((r) => r.size === bodies[0].length));
    assert.ok((await store.getBuffer('inm/race')).equals(bodies[winners[0]]));
  } finally {
    client.destroy();
    await store.close();
    await ts.stop();
  }
});

test('multipart puts with refilled part buffers: every boundary round-trips, a small body is one PUT, a failing source stores nothing', async () => {
  const ts = await startStore('s3');
  const proxy = await startProxy(ts.s3rver!.port, { capture: true });
  const r = ts.resolved();
  r.endpointURL = `http://127.0.0.1:${proxy.port}`;
  const store = await openObjectStore(r);
  const MiB = 1024 * 1024;
  const part = 5 * MiB;
  // Chunks of an odd size, so parts end in the middle of a chunk.
  const source = (bytes: Buffer) => Readable.from((function* () {
    for (let at = 0; at < bytes.length; at += 777_777) yield bytes.subarray(at, at + 777_777);
  })());
  const requests = (key: string) => proxy.sentByClients().toString('latin1').match(new RegExp(`(PUT|POST) /[^ ]*/${key}(\\?[^ ]*)? `, 'g')) ?? [];
  try {
    for (const size of [0, 1, part, part + 1, 3 * part + 123_456]) {
      const bytes = randomBytes(size);
      const key = `mp/s${size}`;
      const put = await store.put(key, source(bytes), { partSize: part, queueSize: 2 });
      assert.deepEqual(put, { status: 'created', size });
      assert.ok((await store.getBuffer(key)).equals(bytes), `${key} round-trips`);
      const sent = requests(key);
      const uploadParts = sent.filter((l) => /partNumber=/.test(l)).length;
      if (size <= part) assert.deepEqual(sent.map((l) => l.split(' ')[0]), ['PUT'], `${key}: one PUT`);
      else assert.equal(uploadParts, Math.ceil(size / part), `${key}: ${sent.join(', ')}`);
    }
    // Fails after two parts were uploaded: the put rejects with the source's error and leaves no object.
    const failing = Readable.from((async function* () {
      yield randomBytes(2 * part + 10);
      throw new Error('source broke');
    })());
    await assert.rejects(store.put('mp/broken', failing, { partSize: part, queueSize: 1 }), /source broke/);
    assert.equal(await store.head('mp/broken'), undefined);
    assert.ok(requests('mp/broken').some((l) => /partNumber=1/.test(l)), 'a part was uploaded before the failure');
  } finally {
    await store.close();
    await proxy.close();
    await ts.stop();
  }
});
