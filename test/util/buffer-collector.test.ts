/**
 * The Buffer collector's tracked mode (src/util/gc.ts), as the WAL daemon, its compression worker
 * and the sidecar run it: dead Buffers are collected while a transfer passed to during() runs, and
 * left alone (no check wakes the process) while none does. Measured on this process's own
 * `external` memory, with real Buffers dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { exposedGc, startBufferCollector } from '../../src/util/gc.js';

const MiB = 1024 * 1024;
const DROPPED = 24 * MiB;

/**
 * Allocates DROPPED bytes of Buffers and drops them; returns `external` with them still counted.
 * Two scavenges first move them to the old generation, as a transfer's long-lived Buffers are: only
 * a full collection (the collector's) frees them, not the scavenges the test runner's own work sets off.
 */
function dropBuffers(): number {
  let buffers: Buffer[] | undefined = Array.from({ length: DROPPED / MiB }, () => Buffer.alloc(MiB, 1));
  exposedGc()({ type: 'minor' });
  exposedGc()({ type: 'minor' });
  const external = process.memoryUsage().external;
  assert.equal(buffers.length, DROPPED / MiB);
  buffers = undefined;
  return external;
}

test('tracked: dead Buffers stay while no transfer runs, are collected while one does, and stay again after it ended', async () => {
  const collector = startBufferCollector(0, 4 * MiB, 'tracked');
  try {
    const idleBefore = dropBuffers();
    await sleep(300);
    assert.ok(process.memoryUsage().external > idleBefore - DROPPED / 2, 'no check ran with no transfer');

    const transferred = await collector.during(sleep(300).then(() => 'done'));
    assert.equal(transferred, 'done');
    assert.ok(process.memoryUsage().external < idleBefore - DROPPED / 2, 'a check during the transfer collected them');

    await sleep(200); // the one check after the last transfer ended
    const idleAfter = dropBuffers();
    await sleep(300);
    assert.ok(process.memoryUsage().external > idleAfter - DROPPED / 2, 'the checks ended with the transfer');
    await assert.rejects(collector.during(Promise.reject(new Error('store down'))), /store down/);
  } finally {
    collector.stop();
  }
});

test('always: dead Buffers are collected with no transfer', async () => {
  const collector = startBufferCollector(0, 4 * MiB, 'always');
  try {
    const before = dropBuffers();
    await sleep(300);
    assert.ok(process.memoryUsage().external < before - DROPPED / 2);
  } finally {
    collector.stop();
  }
});
