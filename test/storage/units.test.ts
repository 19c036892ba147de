/** Pure logic of the storage layer: destination parsing, retry classification, listing merge, ranges. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, safeDisplay } from '../../src/storage/destination.js';
import { classifyStorageError, storageError, StorageError } from '../../src/storage/errors.js';
import { backoffDelay, isTransient, withRetry } from '../../src/storage/retry.js';
import { mergeListing, tagQuery } from '../../src/storage/common.js';
import { assertContentRange } from '../../src/storage/resumable.js';
import { assertKey, partSizeFor } from '../../src/storage/keys.js';
import { UserError } from '../../src/util/errors.js';

test('destinationPath forms parse into provider, bucket/container and key prefix', () => {
  assert.deepEqual(parseDestination('s3://bucket/a/b/'), { provider: 's3', bucket: 'bucket', prefix: 'a/b/', displayUrl: 's3://bucket/a/b/' });
  assert.deepEqual(parseDestination('s3://bucket'), { provider: 's3', bucket: 'bucket', prefix: '', displayUrl: 's3://bucket' });
  assert.deepEqual(parseDestination('https://acct.blob.core.windows.net/cont/x/y'), {
    provider: 'azure', serviceUrl: 'https://acct.blob.core.windows.net', account: 'acct', container: 'cont', prefix: 'x/y/', displayUrl: 'https://acct.blob.core.windows.net/cont/x/y',
  });
  assert.deepEqual(parseDestination('http://127.0.0.1:10000/devstoreaccount1/cont/p'), {
    provider: 'azure', serviceUrl: 'http://127.0.0.1:10000/devstoreaccount1', account: 'devstoreaccount1', container: 'cont', prefix: 'p/', displayUrl: 'http://127.0.0.1:10000/devstoreaccount1/cont/p',
  });
  assert.deepEqual(parseDestination('file:///var/backups/pg'), { provider: 'file', root: '/var/backups/pg', displayUrl: 'file:///var/backups/pg' });
  assert.throws(() => parseDestination('http://127.0.0.1:10000/onlyaccount'), UserError);
  assert.throws(() => parseDestination('ftp://host/x'), UserError);
  assert.throws(() => parseDestination('gs://bucket/x'), /not supported/);
  assert.throws(() => parseDestination('not a url'), UserError);
});

test('display URLs drop user info and query strings (where a SAS token would be)', () => {
  assert.equal(safeDisplay('https://u:p@acct.blob.core.windows.net/c/p?sv=1&sig=SECRET'), 'https://acct.blob.core.windows.net/c/p');
  assert.equal(parseDestination('https://acct.blob.core.windows.net/c/p?sig=SECRET').displayUrl, 'https://acct.blob.core.windows.net/c/p');
});

test('storage errors are classified without parsing messages', () => {
  const s3Error = (name: string, status: number) => Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: status } });
  assert.equal(classifyStorageError(s3Error('InvalidAccessKeyId', 403)), 'auth');
  assert.equal(classifyStorageError(s3Error('SignatureDoesNotMatch', 403)), 'auth');
  assert.equal(classifyStorageError(s3Error('NoSuchBucket', 404)), 'not-found-bucket');
  assert.equal(classifyStorageError(Object.assign(new Error('x'), { code: 'ContainerNotFound', statusCode: 404 })), 'not-found-bucket');
  assert.equal(classifyStorageError(Object.assign(new Error('x'), { code: 'AuthenticationFailed', statusCode: 403 })), 'auth');
  assert.equal(classifyStorageError(new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ECONNREFUSED' }) })), 'unreachable');
  assert.equal(classifyStorageError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 'unreachable');
  assert.equal(classifyStorageError(s3Error('InternalError', 500)), 'other');
  const wrapped = storageError('put', 'k', 's3://b/p', s3Error('NoSuchBucket', 404));
  assert.ok(wrapped instanceof StorageError);
  assert.equal(wrapped.kind, 'not-found-bucket');
  assert.match(wrapped.message, /^put "k" on s3:\/\/b\/p failed: bucket\/container does not exist/);
  assert.ok(wrapped.hint);
  assert.equal(storageError('list', undefined, 'x', wrapped), wrapped);
});

test('transient failures are 5xx, 408/429, throttling, resets and timeouts; 4xx and aborts are not', () => {
  const withStatus = (status: number, name = 'Err') => Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: status } });
  for (const e of [withStatus(500), withStatus(503, 'SlowDown'), withStatus(429), withStatus(408), Object.assign(new Error('x'), { code: 'ECONNRESET' }), Object.assign(new Error('x'), { name: 'TimeoutError' }), Object.assign(new Error('x'), { code: 'ServerBusy' })]) {
    assert.equal(isTransient(e), true, String((e as any).name ?? (e as any).code));
  }
  for (const e of [withStatus(403), withStatus(404, 'NoSuchKey'), withStatus(400), Object.assign(new Error('x'), { name: 'AbortError' })]) {
    assert.equal(isTransient(e), false);
  }
});

test('backoff is full jitter under an exponentially growing, capped ceiling', () => {
  const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let retry = 1; retry <= 8; retry++) {
    const ceiling = Math.min(1000, 100 * 2 ** (retry - 1));
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(retry, policy);
      assert.ok(d >= 0 && d < ceiling, `retry ${retry}: ${d} not in [0, ${ceiling})`);
    }
  }
});

test('withRetry retries transient failures up to maxAttempts and never permanent ones', async () => {
  const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
  let calls = 0;
  const reset = () => Object.assign(new Error('reset'), { code: 'ECONNRESET' });
  assert.equal(await withRetry(async () => (++calls < 3 ? Promise.reject(reset()) : 'ok'), { policy }), 'ok');
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(withRetry(async () => { calls++; throw reset(); }, { policy }), /reset/);
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(withRetry(async () => { calls++; throw Object.assign(new Error('denied'), { $metadata: { httpStatusCode: 403 } }); }, { policy }), /denied/);
  assert.equal(calls, 1);
});

test('listing pages interleave objects and common prefixes in key order', () => {
  const objects = [{ key: 'a', size: 1 }, { key: 'c', size: 1 }, { key: 'e', size: 1 }];
  const merged = [...mergeListing(objects, ['b/', 'd/', 'f/'])].map((e) => e.object?.key ?? e.prefix);
  assert.deepEqual(merged, ['a', 'b/', 'c', 'd/', 'e', 'f/']);
  assert.deepEqual([...mergeListing([], ['x/'])], [{ prefix: 'x/' }]);
});

test('a ranged response must cover exactly the requested bytes', () => {
  assert.doesNotThrow(() => assertContentRange('bytes 5-9/100', 5, 9));
  assert.doesNotThrow(() => assertContentRange('bytes 5-99/100', 5, undefined));
  // Asking past the end gets the tail, which is what the object has.
  assert.doesNotThrow(() => assertContentRange('bytes 5-99/100', 5, 500));
  assert.throws(() => assertContentRange('bytes 0-99/100', 0, 0), /server answered range 0-0/);
  assert.throws(() => assertContentRange(undefined, 5, 9), /whole object/);
  assert.throws(() => assertContentRange('bytes 0-9/100', 5, 9));
});

test('keys are relative POSIX paths that cannot escape the store root', () => {
  assert.doesNotThrow(() => assertKey('pg/wals/0000000100000000/000000010000000000000001'));
  for (const bad of ['', '/abs', 'a/../b', 'a//b', './a', 'a/', 'a\0b']) assert.throws(() => assertKey(bad), UserError, bad);
});

test('part size respects the provider limits and the expected size', () => {
  const limits = { minPartSize: 5, maxPartSize: 1000 };
  assert.equal(partSizeFor(1, limits), 5);
  assert.equal(partSizeFor(5000, limits), 1000);
  assert.equal(partSizeFor(10, limits, 100_000, 1000), 100);
  assert.equal(tagQuery({ a: 'b c', 'k&': '=' }), 'a=b+c&k%26=%3D');
});
