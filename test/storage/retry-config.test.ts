/**
 * PGARK_STORAGE_MAX_ATTEMPTS is read in one place and refused when it is not a usable count, and
 * a clock-skew answer from S3 is retried (the SDK corrects its clock from the failed response).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storageMaxAttempts, isTransient } from '../../src/storage/retry.js';
import { openObjectStore } from '../../src/storage/open.js';
import { UserError } from '../../src/util/errors.js';
import { startStore } from '../harness/stores.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterText, s3StoreText, secretText, yamlDocuments } from '../harness/manifests.js';
import { pgark } from '../backup/helpers.js';

test('PGARK_STORAGE_MAX_ATTEMPTS: default 6, a whole number from 1 to 100, anything else is a UserError naming it', () => {
  assert.equal(storageMaxAttempts({}), 6);
  assert.equal(storageMaxAttempts({ PGARK_STORAGE_MAX_ATTEMPTS: '3' }), 3);
  assert.equal(storageMaxAttempts({ PGARK_STORAGE_MAX_ATTEMPTS: '1' }), 1);
  for (const bad of ['six', '', '0', '-1', '1.5', '1e2', 'NaN', 'Infinity', '101', '0x10']) {
    assert.throws(
      () => storageMaxAttempts({ PGARK_STORAGE_MAX_ATTEMPTS: bad }),
      (e: unknown) => e instanceof UserError && e.exitCode === 2 && e.message.includes('PGARK_STORAGE_MAX_ATTEMPTS') && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

test('a non-numeric, zero or negative PGARK_STORAGE_MAX_ATTEMPTS stops a command with exit 2 before any request', { timeout: 120_000 }, async () => {
  const dir = scratchDir('max-attempts');
  try {
    // Nothing listens on this port: every request fails with ECONNREFUSED, a transient error, so a
    // NaN attempt limit would retry for ever.
    const port = await freePort();
    const file = join(dir.path, 'cluster.yaml');
    writeFileSync(
      file,
      yamlDocuments(clusterText({ store: s3StoreText({ endpointURL: `http://127.0.0.1:${port}`, keys: ['ID', 'KEY'] }) }), secretText('stringData: {ID: id, KEY: key}\n')),
    );
    for (const value of ['abc', '0', '-2']) {
      const r = await pgark(['backup', 'list', '-f', file], { PGARK_STORAGE_MAX_ATTEMPTS: value, HOME: dir.path });
      assert.equal(r.code, 2, `${value}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`PGARK_STORAGE_MAX_ATTEMPTS="${value}" is not a whole number from 1 to 100`));
    }
  } finally {
    dir.cleanup();
  }
});

test('clock-skew codes are transient; signature and access errors only when the SDK corrected a skew', () => {
  const s3Error = (name: string, extra: Record<string, unknown> = {}, message = 'x') =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 403, ...extra } });
  for (const name of ['RequestTimeTooSkewed', 'RequestExpired', 'RequestInTheFuture']) assert.equal(isTransient(s3Error(name)), true, name);
  for (const name of ['SignatureDoesNotMatch', 'InvalidSignatureException', 'AccessDenied', 'AuthFailure']) {
    assert.equal(isTransient(s3Error(name)), false, `${name} alone is a wrong key`);
    assert.equal(isTransient(s3Error(name, { clockSkewCorrected: true })), true, `${name} after a skew correction`);
  }
  assert.equal(isTransient(s3Error('InvalidSignatureException', {}, 'Signature expired: 20260101T000000Z is now earlier than ...')), true);
});

/**
 * An HTTP front of s3rver that answers the first `failures` requests with an S3 error document,
 * as AWS does when the request's signing time is off, and forwards everything else.
 */
async function failingFront(target: string, code: string, failures: number) {
  let left = failures;
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${req.url}`);
    if (left > 0) {
      left--;
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/xml', date: new Date().toUTCString() });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>r</RequestId></Error>`);
      });
      return;
    }
    const up = new URL(target);
    const fwd = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('S3: RequestTimeTooSkewed and RequestExpired answers are retried; SignatureDoesNotMatch without a skew is not', async () => {
  const ts = await startStore('s3');
  try {
    for (const code of ['RequestTimeTooSkewed', 'RequestExpired']) {
      const front = await failingFront(ts.s3rver!.endpoint, code, 2);
      const store = await openObjectStore({ ...ts.resolved(), endpointURL: front.url });
      try {
        await store.put(`skew/${code}`, Buffer.from('after the skew'));
        assert.equal((await store.getBuffer(`skew/${code}`)).toString(), 'after the skew');
        assert.equal(front.seen.filter((s) => s.startsWith('PUT ')).length, 3, `${code}: two refused PUTs, then the stored one`);
      } finally {
        await store.close();
        await front.close();
      }
    }
    const front = await failingFront(ts.s3rver!.endpoint, 'SignatureDoesNotMatch', 1);
    const store = await openObjectStore({ ...ts.resolved(), endpointURL: front.url });
    try {
      await assert.rejects(store.put('skew/wrong-key', Buffer.from('x')), /SignatureDoesNotMatch/);
      assert.equal(front.seen.length, 1, 'a wrong key is not retried');
    } finally {
      await store.close();
      await front.close();
    }
  } finally {
    await ts.stop();
  }
});
