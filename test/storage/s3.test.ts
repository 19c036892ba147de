import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openObjectStore } from '../../src/storage/open.js';
import { classifyStorageError } from '../../src/storage/errors.js';
import { startStore } from '../harness/stores.js';
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
