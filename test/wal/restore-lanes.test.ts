/**
 * The WAL prefetch's lane gauge on its own (src/wal/restore-lanes.ts): its decisions from given
 * transfer times. test/wal/services.test.ts drives it through the restore service on a real store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaneGauge } from '../../src/wal/restore-lanes.js';

/** Feeds the gauge transfers that take `msAt(lanes)` at whatever it asks for, `rounds` times; returns the lanes it settled on. */
function settle(gauge: LaneGauge, msAt: (lanes: number) => number, rounds = 40): number {
  for (let i = 0; i < rounds; i++) gauge.record(gauge.lanes, msAt(gauge.lanes));
  return gauge.lanes;
}

test('a transfer as long whatever runs beside it (a far store, bandwidth per connection): the lanes grow to the ceiling', () => {
  assert.equal(settle(new LaneGauge(2, 8), () => 450), 8);
});

test('transfers sharing one capacity (the CPU of 2 cores): one lane more is tried once, then the gauge stays at the floor', () => {
  const gauge = new LaneGauge(2, 8);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) {
    seen.add(gauge.lanes);
    gauge.record(gauge.lanes, 130 * gauge.lanes);
  }
  assert.deepEqual([...seen].sort(), [2, 3]);
  assert.equal(gauge.lanes, 2);
});

test('a capacity of four transfers: the gauge stops where one more lane stops delivering more', () => {
  assert.equal(settle(new LaneGauge(2, 16), (lanes) => 100 * Math.max(1, lanes / 4)), 4);
});

test('never below the floor, never above the ceiling (wal.maxParallel)', () => {
  assert.equal(settle(new LaneGauge(2, 3), () => 100), 3);
  assert.equal(settle(new LaneGauge(2, 8), (lanes) => 100 * lanes ** 2), 2);
  assert.equal(new LaneGauge(2, 1).lanes, 1, 'maxParallel 1 is one transfer at a time');
  assert.equal(settle(new LaneGauge(2, 1), () => 100), 1);
});
