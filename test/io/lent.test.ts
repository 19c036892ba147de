/** BufferLender: read buffers lent and handed back (io/lent.ts); pure, no I/O. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferLender, copied } from '../../src/io/lent.js';

test('a read of a few bytes takes a buffer of that size, which is not kept; full-size buffers come back once copied', () => {
  const lender = new BufferLender(64 * 1024, 2);
  const small = lender.take(8192);
  assert.equal(small.length, 8192, 'a small file does not take a 64 KiB buffer');
  copied(lender.lend(small, 8192));
  assert.equal(lender.take().length, 64 * 1024, 'the small buffer is not lent again for a large read');

  const full = lender.take(1 << 20);
  assert.equal(full.length, 64 * 1024, 'never more than the lender\'s size');
  copied(lender.lend(full, 100));
  // A kept buffer serves any read, small ones included: it is already paid for.
  assert.equal(lender.take(10).buffer, full.buffer);
});
