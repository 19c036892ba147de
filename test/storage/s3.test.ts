import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openObjectStore } from '../../src/storage/open.js';
import { classifyStorageError } from '../../src/storage/errors.js';
import { Readable } from 'node:stream';
import { startStore } from '../harness/stores.js';
import { startProxy } from '../harness/proxy.js';
import { runContract } from './contract.js';

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
