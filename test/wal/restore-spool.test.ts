/**
 * The restore spool's owner: prefetched segments are not fsynced, so a spool may be served only by
 * the daemon that filled it, alive, in this boot. A daemon starting over a leftover spool (its
 * predecessor killed, or the machine rebooted) must empty it and claim it before anyone can take
 * from it, and a closed daemon leaves nothing that still vouches for a spool. Real daemon, in this
 * process; bin/pgark's side of the check is in launcher.test.ts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWalDaemon } from '../../src/wal/daemon.js';
import { processIdentity, restoreSpoolLive, walRuntime } from '../../src/wal/runtime.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata } from './helpers.js';

const work = scratchDir('wal-restore-spool');
after(() => work.cleanup());

const SEG = '000000010000000000000007';

test('a daemon empties a leftover restore spool and claims it before serving; closed, it leaves no live claim', async () => {
  const d = fakePgdata(join(work.path, 'leftover'));
  const rt = walRuntime(d.pgdata);
  const stale = join(rt.restoreSpool, '0123456789abcdef');
  mkdirSync(stale, { recursive: true, mode: 0o700 });
  writeFileSync(join(stale, SEG), craftSegment(SEG));
  writeFileSync(join(stale, '00000002.history.absent'), '');
  // The previous daemon's claim, as written before a crash: a PID that runs no more.
  const [, boot, start] = processIdentity(process.pid)!.split(' ');
  writeFileSync(rt.restoreSpoolOwner, `2147483646 ${boot} ${start}\n`);
  assert.equal(restoreSpoolLive(rt), false, 'a dead owner does not vouch for its spool');

  const daemon = await startWalDaemon({ pgdata: d.pgdata, idleTimeoutMs: 0 });
  try {
    assert.deepEqual(readdirSync(rt.restoreSpool), ['.owner'], 'nothing of the leftover spool remains');
    assert.equal(readFileSync(rt.restoreSpoolOwner, 'utf8').trim(), processIdentity(process.pid));
    assert.equal(restoreSpoolLive(rt), true);
  } finally {
    await daemon.close();
  }
  assert.equal(existsSync(rt.restoreSpool), false, 'the spool goes with its daemon');
  assert.equal(restoreSpoolLive(rt), false);
});
