import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareLsn, formatLsn, isLsn, lsnAdd, lsnDiff, MAX_LSN, parseLsn } from '../../src/pg/lsn.js';
import { UserError } from '../../src/util/errors.js';

test('parseLsn reads both halves as hex', () => {
  assert.equal(parseLsn('0/0'), 0n);
  assert.equal(parseLsn('16/B374D848'), 0x16b374d848n);
  assert.equal(parseLsn('0/16b3748'), 0x16b3748n);
  assert.equal(parseLsn('FFFFFFFF/FFFFFFFF'), MAX_LSN);
  assert.equal(parseLsn(' 1/0 '), 1n << 32n);
});

test('parseLsn rejects malformed input with a UserError naming the value', () => {
  for (const bad of ['', '0', '0/', '/0', '1/2/3', 'G/0', '123456789/0', '0/123456789', '-1/0', '0x1/0']) {
    assert.throws(() => parseLsn(bad, '--target-lsn'), (e: unknown) => e instanceof UserError && e.message.startsWith('--target-lsn') && e.exitCode === 2, bad);
    assert.equal(isLsn(bad), false, bad);
  }
});

test('formatLsn matches PostgreSQL %X/%X and round-trips', () => {
  assert.equal(formatLsn(0n), '0/0');
  assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
  assert.equal(formatLsn(0x100000000n), '1/0');
  assert.equal(formatLsn(MAX_LSN), 'FFFFFFFF/FFFFFFFF');
  for (const s of ['0/1', 'A/B', 'ABCDEF01/23456789']) assert.equal(formatLsn(parseLsn(s)), s);
  assert.throws(() => formatLsn(-1n), RangeError);
  assert.throws(() => formatLsn(MAX_LSN + 1n), RangeError);
});

test('lsnDiff, lsnAdd and compareLsn', () => {
  assert.equal(lsnDiff(parseLsn('1/0'), parseLsn('0/FFFFFFFF')), 1n);
  assert.equal(lsnDiff(parseLsn('0/10'), parseLsn('0/20')), -16n);
  assert.equal(formatLsn(lsnAdd(parseLsn('0/FFFFFFFF'), 1)), '1/0');
  assert.equal(formatLsn(lsnAdd(parseLsn('1/0'), -1n)), '0/FFFFFFFF');
  assert.throws(() => lsnAdd(MAX_LSN, 1), RangeError);
  assert.throws(() => lsnAdd(0n, -1), RangeError);
  assert.equal(compareLsn(parseLsn('0/FFFFFFFF'), parseLsn('1/0')), -1);
  assert.equal(compareLsn(parseLsn('2/0'), parseLsn('1/FFFFFFFF')), 1);
  assert.equal(compareLsn(5n, 5n), 0);
});
