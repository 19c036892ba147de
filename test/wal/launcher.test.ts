/**
 * bin/pgark, the POSIX sh launcher PostgreSQL runs as archive_command and restore_command: it
 * answers for a segment the WAL daemon stored (or is storing), and serves a segment the daemon
 * prefetched, without starting Node, and hands everything else to Node.
 * PGARK_NODE=/bin/false makes any hand-over visible as exit code 1, so each test shows which side
 * answered. The real daemon path is covered by postgres.test.ts, which archives through it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { scratchDir } from '../harness/tmp.js';
import { parseWalName } from '../../src/pg/wal-names.js';
import { absenceMarkerText, claimRestoreSpool, fileIdentity, noteRenameTarget, processIdentity, RENAME_TARGET_FILE, REQUESTS_TAKEN_FILE, walRuntime } from '../../src/wal/runtime.js';
import { PGARK_LAUNCHER, fakePgdata, craftSegment } from './helpers.js';

const SEG = '000000010000000000000007';
const NOBODY = 65534;
const work = scratchDir('wal-launcher');
after(() => work.cleanup());

function launch(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(PGARK_LAUNCHER, args, { cwd, env: { ...process.env, PGARK_NODE: '/bin/false', ...env }, stdio: 'ignore' });
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  return { child, done };
}

function setup(name: string) {
  const d = fakePgdata(join(work.path, name));
  const p = d.addReady(SEG, craftSegment(SEG));
  const rt = walRuntime(d.pgdata);
  mkdirSync(rt.archiveSpool, { recursive: true, mode: 0o700 });
  const marker = join(rt.archiveSpool, SEG);
  return { ...d, p, rt, marker, identity: fileIdentity(join(d.pgdata, p))! };
}

test('a marker naming the very file answers without Node; any other file identity goes to Node', async () => {
  const s = setup('marker');
  writeFileSync(s.marker, `${s.identity}\n`);
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 0);
  // Absolute %p, as some setups pass it.
  assert.equal(await launch('/', ['wal-archive', '-f', 'c.yaml', join(s.pgdata, s.p)]).done, 0);

  // The same name rewritten (new mtime): the marker no longer vouches for it.
  utimesSync(join(s.pgdata, s.p), new Date(), new Date(Date.now() + 5000));
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1);
  // A marker from another file with the same name and size (another inode).
  writeFileSync(s.marker, `${s.identity}\n`);
  const copy = join(s.walDir, 'copy');
  writeFileSync(copy, craftSegment(SEG));
  renameSync(copy, join(s.pgdata, s.p));
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1);
});

test('a marker in a runtime directory that is not private to this user is not believed', async () => {
  const s = setup('not-private');
  writeFileSync(s.marker, `${s.identity}\n`);
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 0);
  chmodSync(s.rt.dir, 0o755);
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1, 'mode 0755');
  chmodSync(s.rt.dir, 0o700);
  chownSync(s.rt.dir, NOBODY, NOBODY);
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1, 'owned by nobody');
});

test('only plain segments under pg_wal, with the daemon in use, are answered by sh', async () => {
  const s = setup('scope');
  writeFileSync(s.marker, `${s.identity}\n`);
  for (const args of [
    ['wal-archive', '--no-daemon', '-f', 'c.yaml', s.p],
    ['wal-archive', '--pgdata', s.pgdata, '-f', 'c.yaml', s.p],
    ['wal-archive', '-f', 'c.yaml', s.p, '--help'],
    ['wal-restore', '-f', 'c.yaml', SEG, s.p],
  ]) {
    assert.equal(await launch(s.pgdata, args).done, 1, args.join(' '));
  }
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p], { PGARK_WAL_NO_DAEMON: '1' }).done, 1);
  // A history file is never answered from a marker.
  const history = s.addReady('00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'));
  writeFileSync(join(s.rt.archiveSpool, '00000002.history'), `${fileIdentity(join(s.pgdata, history))}\n`);
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', history]).done, 1);
});

test('while the daemon uploads the segment, sh waits for its marker', async () => {
  const s = setup('inflight');
  const daemon = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    writeFileSync(s.rt.lockFile, String(daemon.pid));
    writeFileSync(`${s.marker}.inflight`, '');
    const run = launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]);
    let exited = false;
    void run.done.then(() => (exited = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(exited, false, 'still waiting while the upload is in flight');
    // The daemon's order: marker first, then .inflight removed.
    writeFileSync(s.marker, `${s.identity}\n`);
    unlinkSync(`${s.marker}.inflight`);
    assert.equal(await run.done, 0);

    // A failed upload: .inflight goes away without a marker, and Node takes over (to report the error).
    rmSync(s.marker);
    writeFileSync(`${s.marker}.inflight`, '');
    const failed = launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]);
    await new Promise((r) => setTimeout(r, 200));
    unlinkSync(`${s.marker}.inflight`);
    assert.equal(await failed.done, 1);
  } finally {
    daemon.kill();
  }
});

test('an archive request the daemon leaves untaken goes to Node; none is left for a daemon that does not take them', async () => {
  const s = setup('request-untaken');
  const daemon = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    writeFileSync(s.rt.lockFile, String(daemon.pid));
    assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1, 'no .requests: Node at once');
    assert.equal(existsSync(`${s.marker}.request`), false);
    // A daemon that says it takes requests but never starts an upload (stalled): Node after the poll limit.
    writeFileSync(join(s.rt.archiveSpool, REQUESTS_TAKEN_FILE), '');
    assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1, 'handed to Node');
    assert.deepEqual(readFileSync(`${s.marker}.request`, 'utf8').split('\n'), [realpathSync(s.pgdata), '', 'wal-archive', '-f', 'c.yaml', s.p, '.', '']);
  } finally {
    daemon.kill();
  }
});

test('an .inflight file left by a killed daemon does not hold archive_command', async () => {
  const s = setup('stale');
  const gone = spawn('true');
  await new Promise((r) => gone.on('close', r));
  writeFileSync(s.rt.lockFile, String(gone.pid));
  writeFileSync(`${s.marker}.inflight`, '');
  assert.equal(await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', s.p]).done, 1);
});

/**
 * The launcher's own test for "a plain segment name" and src/pg/wal-names.ts must agree: sh answers
 * from a marker only for a name the TS module parses as a segment in PostgreSQL's own spelling.
 */
test('sh and the WAL-name module agree on which names are plain segments', async () => {
  const s = setup('names');
  const names = [
    SEG,
    '0000000100000000000000FF',
    '000000010000000100000000',
    'FFFFFFFFFFFFFFFFFFFFFFFF',
    // Impossible with 16 MiB segments, but neither side knows the segment size.
    '0000000100000000000001FF',
    '00000001000000000000000a',
    '000000000000000000000007',
    '00000002.history',
    `${SEG}.partial`,
    `${SEG}.00000028.backup`,
    `${SEG}.ready`,
    `${SEG}.done`,
    ...['.gz', '.bz2', '.xz', '.snappy', '.zst', '.lz4'].map((ext) => `${SEG}${ext}`),
    SEG.slice(1),
    `${SEG}0`,
    `0${SEG}`,
    '00000001000000000000000G',
    '0x0000010000000000000007',
    ' 00000001000000000000007',
    'RECOVERYXLOG',
  ];
  const moduleSays = (name: string) => {
    try {
      const p = parseWalName(name);
      return p.kind === 'segment' && p.base === name;
    } catch {
      return false;
    }
  };
  for (const name of names) {
    const file = join(s.walDir, name);
    writeFileSync(file, 'x');
    writeFileSync(join(s.rt.archiveSpool, name), `${fileIdentity(file)}\n`);
    const shAnswered = (await launch(s.pgdata, ['wal-archive', '-f', 'c.yaml', `pg_wal/${name}`]).done) === 0;
    assert.equal(shAnswered, moduleSays(name), `${JSON.stringify(name)}: sh ${shAnswered ? 'answered' : 'handed over'}`);
  }
  assert.equal(moduleSays(SEG), true, 'the table holds names both accept');
});

/** A restore spool the daemon (this test process standing in for it, by its identity in restore-spool/.owner) prefetched SEG into. */
function restoreSetup(name: string) {
  const d = fakePgdata(join(work.path, name));
  const rt = walRuntime(d.pgdata);
  const id = '0123456789abcdef';
  const spool = join(rt.restoreSpool, id);
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  chmodSync(rt.dir, 0o700);
  claimRestoreSpool(rt);
  const bytes = craftSegment(SEG);
  writeFileSync(join(spool, SEG), bytes);
  const args = ['wal-restore', '-f', 'c.yaml', SEG, 'pg_wal/RECOVERYXLOG'];
  return { ...d, rt, id, spool, bytes, args, env: { PGARK_WAL_RESTORE_SPOOL: id } };
}

test('wal-restore: a segment prefetched into the named spool is moved to %p without Node', async () => {
  const s = restoreSetup('restore-spool');
  assert.equal(await launch(s.pgdata, s.args, s.env).done, 0);
  assert.deepEqual(readFileSync(join(s.walDir, 'RECOVERYXLOG')), s.bytes);
  assert.equal(existsSync(join(s.spool, SEG)), false, 'taken out of the spool (the daemon watches for that)');
  // Nothing left to take: Node answers (and would ask the daemon).
  assert.equal(await launch(s.pgdata, s.args, s.env).done, 1);
});

test('wal-restore: sh serves nothing without the spool id, a live daemon, a private runtime directory, one file system, or a plain segment', async () => {
  const s = restoreSetup('restore-scope');
  const dest = join(s.walDir, 'RECOVERYXLOG');
  const refused = async (why: string, args = s.args, env: NodeJS.ProcessEnv = s.env) => {
    assert.equal(await launch(s.pgdata, args, env).done, 1, why);
    assert.equal(existsSync(dest), false, `${why}: %p untouched`);
    assert.equal(existsSync(join(s.spool, SEG)), true, `${why}: still spooled`);
  };
  await refused('no PGARK_WAL_RESTORE_SPOOL', s.args, {});
  await refused('an id that is not hex', s.args, { PGARK_WAL_RESTORE_SPOOL: '../restore-spool/0123456789abcdef' });
  await refused('--no-daemon', ['wal-restore', '--no-daemon', '-f', 'c.yaml', SEG, 'pg_wal/RECOVERYXLOG']);
  await refused('PGARK_WAL_NO_DAEMON', s.args, { ...s.env, PGARK_WAL_NO_DAEMON: '1' });
  writeFileSync(join(s.spool, '00000002.history'), '1\t0/3000000\tx\n');
  await refused('a history file', ['wal-restore', '-f', 'c.yaml', '00000002.history', 'pg_wal/RECOVERYHISTORY']);
  await refused('%p outside pg_wal', ['wal-restore', '-f', 'c.yaml', SEG, 'RECOVERYXLOG']);
  chmodSync(s.rt.dir, 0o755);
  await refused('runtime directory mode 0755');
  chmodSync(s.rt.dir, 0o700);
  // Prefetched segments are not fsynced: a spool whose daemon is gone is a leftover, possibly of
  // another boot, and its owner's PID may name another process by now.
  const identity = processIdentity(process.pid)!.split(' ');
  writeFileSync(s.rt.restoreSpoolOwner, `2147483646 ${identity[1]} ${identity[2]}\n`);
  await refused('dead daemon');
  writeFileSync(s.rt.restoreSpoolOwner, `${process.pid} 00000000-0000-0000-0000-000000000000 ${identity[2]}\n`);
  await refused('a live PID, but the owner wrote it in another boot');
  writeFileSync(s.rt.restoreSpoolOwner, `${process.pid} ${identity[1]} ${Number(identity[2]) + 1}\n`);
  await refused('a live PID of a process that started at another time (PID reused)');
  rmSync(s.rt.restoreSpoolOwner);
  await refused('no owner');
  claimRestoreSpool(s.rt);
  assert.equal(await launch(s.pgdata, s.args, s.env).done, 0, 'and with everything in place, sh serves it');
  assert.deepEqual(readFileSync(dest), s.bytes);
});

test('wal-restore: with the daemon\'s note that pg_wal shares the spool\'s file system, sh moves a segment without a stat of its own', async () => {
  const s = restoreSetup('restore-noted');
  const note = join(s.rt.restoreSpool, RENAME_TARGET_FILE);
  const dest = join(s.walDir, 'RECOVERYXLOG');
  // A PATH holding mv alone: any stat the launcher still ran would fail, and it would hand over to Node.
  const bin = join(work.path, 'mv-only');
  mkdirSync(bin, { recursive: true });
  symlinkSync('/usr/bin/mv', join(bin, 'mv'));
  const env = { ...s.env, PATH: bin };
  const served = async () => (await launch(s.pgdata, s.args, env).done) === 0;

  assert.equal(await served(), false, 'no note: the launcher needs stat');
  assert.equal(noteRenameTarget(s.rt), true);
  assert.equal(readFileSync(note, 'utf8'), `${join(realpathSync(s.pgdata), 'pg_wal')}\n`);
  assert.equal(await served(), true, 'noted: moved with mv alone');
  assert.deepEqual(readFileSync(dest), s.bytes);

  const respool = () => {
    rmSync(dest);
    writeFileSync(join(s.spool, SEG), s.bytes);
  };
  respool();
  writeFileSync(note, `${join(work.path, 'other', 'pg_wal')}\n`);
  assert.equal(await served(), false, 'a note naming another pg_wal');
  assert.equal(noteRenameTarget(s.rt), true);
  chownSync(s.spool, NOBODY, NOBODY);
  assert.equal(await served(), false, 'a spool that is not ours');
  chownSync(s.spool, process.getuid!(), process.getgid!());
  assert.equal(await served(), true);

  // The daemon notes nothing while its runtime directory is not private, or before pg_wal exists.
  rmSync(note);
  chmodSync(s.rt.dir, 0o755);
  assert.equal(noteRenameTarget(s.rt), false);
  chmodSync(s.rt.dir, 0o700);
  assert.equal(existsSync(note), false);
  const early = restoreSetup('restore-noted-early');
  rmSync(join(early.pgdata, 'pg_wal'), { recursive: true });
  assert.equal(noteRenameTarget(early.rt), false);
  assert.equal(existsSync(join(early.rt.restoreSpool, RENAME_TARGET_FILE)), false);
});

test('wal-restore: a file the daemon listed absent is answered "not found" by sh, only while the marker, its daemon and its time are there', async () => {
  const s = restoreSetup('restore-absent');
  const args = ['wal-restore', '-f', 'c.yaml', '00000002.history', 'pg_wal/RECOVERYHISTORY'];
  const marker = join(s.spool, '00000002.history.absent');
  writeFileSync(marker, absenceMarkerText(10_000));
  const answered = launch(s.pgdata, args, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' });
  assert.equal(await answered.done, 1, 'not found, from the marker');
  assert.equal(existsSync(join(s.walDir, 'RECOVERYHISTORY')), false);
  // A segment's marker (left by the request whose listing found it missing) answers its repeat.
  const next = `${SEG.slice(0, -1)}9`;
  writeFileSync(join(s.spool, `${next}.absent`), absenceMarkerText(2_000));
  const segArgs = ['wal-restore', '-f', 'c.yaml', next, 'pg_wal/RECOVERYXLOG'];
  assert.equal(await launch(s.pgdata, segArgs, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' }).done, 1, 'not found, from the marker');
  // A marker past its time (its daemon stalled before its timer removed it), or one without a time, is not believed.
  for (const stale of [absenceMarkerText(-1_000), '', 'soon\n']) {
    writeFileSync(join(s.spool, `${next}.absent`), stale);
    assert.equal(await launch(s.pgdata, segArgs, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' }).done, 127, `marker ${JSON.stringify(stale)}: Node is asked`);
  }
  // Without a live owner the marker is a leftover: Node answers.
  writeFileSync(s.rt.restoreSpoolOwner, '2147483646 x 1\n');
  assert.equal(await launch(s.pgdata, args, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' }).done, 127, 'dead owner: Node is asked');
  claimRestoreSpool(s.rt);
  unlinkSync(marker);
  assert.equal(await launch(s.pgdata, args, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' }).done, 127, 'no marker: Node is asked');
});

test('wal-restore: a segment still being prefetched (.inflight) is waited for, and handed over once it is in the spool', async () => {
  const s = restoreSetup('restore-inflight');
  const spooled = join(s.spool, SEG);
  const aside = join(s.rt.dir, 'aside');
  renameSync(spooled, aside);
  writeFileSync(`${spooled}.inflight`, '');
  const call = launch(s.pgdata, s.args, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' });
  let exited = false;
  void call.done.then(() => (exited = true));
  // Several polls pass while the marker stays: sh neither gives up nor starts Node.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(exited, false, 'still waiting while the prefetch runs');
  renameSync(aside, spooled);
  unlinkSync(`${spooled}.inflight`);
  assert.equal(await call.done, 0);
  assert.deepEqual(readFileSync(join(s.walDir, 'RECOVERYXLOG')), s.bytes);
  // A prefetch that ends without a file (it failed): Node is asked.
  writeFileSync(`${spooled}.inflight`, '');
  const failed = launch(s.pgdata, s.args, { ...s.env, PGARK_NODE: '/bin/false-node-must-not-run' });
  setTimeout(() => unlinkSync(`${spooled}.inflight`), 100);
  assert.equal(await failed.done, 127, 'the marker went without a file: Node (here missing: 127)');
});
