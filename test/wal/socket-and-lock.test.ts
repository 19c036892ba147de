/**
 * Who may answer for the WAL daemon and who may run it: an impostor on the daemon socket, runtime
 * and socket directories another user could write, and 20 daemons started at once for one data
 * directory (the process lock), a daemon killed with -9, and a lock file naming a reused PID.
 * Runs as root (as the test machine does); "another user" is nobody (uid 65534).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startWalDaemon } from '../../src/wal/daemon.js';
import { fileIdentity, walRuntime } from '../../src/wal/runtime.js';
import { craftSegment, fakePgdata, runPgark, stopWalDaemon } from './helpers.js';

const SEG = '000000010000000000000001';
const NOBODY = 65534;
const DAEMON_MAIN = new URL('../../src/wal/daemon-main.js', import.meta.url).pathname;

const work = scratchDir('wal-socket');
// The fallback socket directory lives under TMPDIR: a test's own keeps other runs' daemons out of it.
const tmp = join(work.path, 'tmp');
mkdirSync(tmp, { mode: 0o777 });
chmodSync(tmp, 0o777);
process.env.TMPDIR = tmp;

/** A fake PGDATA; `long` makes $PGDATA/pgark-wal/daemon.sock too long for sun_path. */
function pgdataAt(label: string, long = false) {
  const base = long ? join(work.path, label, 'x'.repeat(60), 'y'.repeat(30)) : join(work.path, label);
  const d = fakePgdata(base);
  return { ...d, p: d.addReady(SEG, craftSegment(SEG)), rt: walRuntime(d.pgdata) };
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix)) if (e.object) out.push(e.object.key);
  return out;
}

const fallbackLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes('not using the WAL daemon'));

describe('WAL daemon socket: only the daemon that knows the key is believed', () => {
  let store: TestStore;
  let client: ObjectStore;
  const pgdatas: string[] = [];

  before(async () => {
    store = await startStore('file');
    client = await openObjectStore(store.resolved('unused'));
  });
  after(async () => {
    for (const d of pgdatas) await stopWalDaemon(d);
    await client.close();
    await store.stop();
  });

  function manifest(server: string): string {
    const file = join(work.path, `${server}.yaml`);
    writeFileSync(file, store.manifest({ clusterName: 'pg', serverName: server }));
    return file;
  }

  /** Exit 0 must mean stored: an answer from anyone but the daemon must not let PostgreSQL drop the segment. */
  async function archiveMustStore(label: string, d: ReturnType<typeof pgdataAt>): Promise<string> {
    pgdatas.push(d.pgdata);
    const r = await runPgark(['wal-archive', '-f', manifest(label), d.p], { cwd: d.pgdata });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await keys(client, `${label}/wals/`), [`${label}/wals/0000000100000000/${SEG}`], 'exit 0 without the segment in the store would lose WAL');
    return r.stderr;
  }

  for (const kind of ['answers {ok:true} at once', 'sends a challenge, then {ok:true} with a made-up proof'] as const) {
    test(`an impostor on the fallback socket path that ${kind} is not believed; the client archives itself and says why, once`, async () => {
      const label = kind.startsWith('answers') ? 'impostor-plain' : 'impostor-proof';
      const d = pgdataAt(label, true);
      assert.ok(!d.rt.socketPath.startsWith(d.rt.dir), 'the socket path falls back outside the runtime directory');
      mkdirSync(join(d.rt.socketPath, '..'), { recursive: true, mode: 0o700 });
      const requests: string[] = [];
      const impostor: Server = createServer((sock) => {
        sock.on('data', (b) => requests.push(String(b)));
        sock.on('error', () => undefined);
        if (kind.startsWith('answers')) sock.write('{"ok":true}\n');
        else {
          sock.write('{"challenge":"00"}\n');
          sock.once('data', () => sock.write(`${JSON.stringify({ body: '{"ok":true}', proof: 'f'.repeat(64) })}\n`));
        }
      });
      await new Promise<void>((r) => impostor.listen(d.rt.socketPath, r));
      try {
        const stderr = await archiveMustStore(label, d);
        assert.equal(fallbackLines(stderr).length, 1, stderr);
        assert.match(stderr, /without proving it knows the WAL daemon's key/);
      } finally {
        await new Promise((r) => impostor.close(r));
      }
    });
  }

  test('a runtime directory others can write is refused with a clear message, and its markers are not believed', async () => {
    const d = pgdataAt('open-mode');
    mkdirSync(d.rt.archiveSpool, { recursive: true });
    chmodSync(d.rt.dir, 0o777);
    // What another local user could plant: a marker vouching for the segment.
    writeFileSync(join(d.rt.archiveSpool, SEG), `${fileIdentity(join(d.pgdata, d.p))}\n`);
    const stderr = await archiveMustStore('open-mode', d);
    assert.match(stderr, new RegExp(`${d.rt.dir} is owned by uid 0 with mode 0777; pgark uses it only when it is private to uid 0`));
    assert.equal(fallbackLines(stderr).length, 1, stderr);
  });

  test('a runtime directory owned by another user is refused by the client and by the daemon', async () => {
    const d = pgdataAt('foreign-owner');
    mkdirSync(d.rt.archiveSpool, { recursive: true, mode: 0o700 });
    writeFileSync(join(d.rt.archiveSpool, SEG), `${fileIdentity(join(d.pgdata, d.p))}\n`);
    chownSync(d.rt.dir, NOBODY, NOBODY);
    const stderr = await archiveMustStore('foreign-owner', d);
    assert.match(stderr, /is owned by uid 65534 with mode 0700/);
    await assert.rejects(startWalDaemon({ pgdata: d.pgdata, idleTimeoutMs: 0 }), /pgark-wal is owned by uid 65534 with mode 0700; pgark uses it only when it is private/);
    assert.ok(!existsSync(d.rt.socketPath), 'no socket opened in it');
  });

  test('a fallback socket directory owned by another user is refused', async () => {
    const d = pgdataAt('foreign-socket-dir', true);
    mkdirSync(d.rt.socketDir, { recursive: true, mode: 0o700 });
    chownSync(d.rt.socketDir, NOBODY, NOBODY);
    try {
      const stderr = await archiveMustStore('foreign-socket-dir', d);
      assert.match(stderr, new RegExp(`${d.rt.socketDir} is owned by uid 65534`));
    } finally {
      rmSync(d.rt.socketDir, { recursive: true, force: true });
    }
  });
});

describe('WAL daemon lock: one daemon per data directory, no stale-lock wait', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  function daemon(pgdata: string): { child: ChildProcess; exited: Promise<number | null> } {
    const child = spawn(process.execPath, [DAEMON_MAIN, pgdata], { env: { ...process.env, PGARK_WAL_DAEMON_IDLE_SECONDS: '600' }, stdio: 'ignore' });
    children.push(child);
    return { child, exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  }

  /** Resolves once `who` wrote its PID to the lock file, or rejects when it exits first. */
  async function serving(lockFile: string, who: { child: ChildProcess; exited: Promise<number | null> }): Promise<void> {
    let exited: number | null | undefined;
    void who.exited.then((c) => (exited = c));
    while (exited === undefined) {
      if (existsSync(lockFile) && readFileSync(lockFile, 'utf8').trim() === String(who.child.pid)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`daemon ${who.child.pid} exited (code ${exited}) instead of serving`);
  }

  test('20 daemons started at once over a stale lock file: exactly one serves, the others exit 0; kill -9 it and a new one serves at once; a reused PID does not block', async () => {
    const d = pgdataAt('twenty');
    mkdirSync(d.rt.dir, { recursive: true, mode: 0o700 });
    // Left by a daemon killed long ago: every contender finds a stale lock to take over.
    writeFileSync(d.rt.lockFile, '2147483646');
    const contenders = Array.from({ length: 20 }, () => daemon(d.pgdata));
    const codes = new Map<ChildProcess, number | null>();
    for (const c of contenders) void c.exited.then((code) => codes.set(c.child, code));
    // Losers exit as soon as they find the lock taken; the guard only turns a hang into a failure.
    const guard = Date.now() + 60_000;
    const owner = () => (existsSync(d.rt.lockFile) ? readFileSync(d.rt.lockFile, 'utf8').trim() : '');
    const settled = () => contenders.every((c) => codes.has(c.child) || owner() === String(c.child.pid));
    while (!settled() && Date.now() < guard) await new Promise((r) => setTimeout(r, 50));
    const running = contenders.filter((c) => !codes.has(c.child));
    assert.equal(running.length, 1, `exactly one daemon runs (running: ${running.map((c) => c.child.pid).join(', ')}; lock file: ${owner()})`);
    const [winner] = running;
    assert.equal(owner(), String(winner.child.pid), 'the lock file names the daemon that runs');
    assert.deepEqual([...codes.values()], Array(19).fill(0), 'a daemon that finds the directory served exits 0');

    winner.child.kill('SIGKILL');
    await winner.exited;
    // Its lock file and socket are left behind; the kernel released the lock itself. A fresh
    // mtime makes the lock file look like that of a daemon still starting.
    assert.equal(readFileSync(d.rt.lockFile, 'utf8').trim(), String(winner.child.pid));
    utimesSync(d.rt.lockFile, new Date(), new Date());
    const next = daemon(d.pgdata);
    await serving(d.rt.lockFile, next);
    next.child.kill('SIGTERM');
    assert.equal(await next.exited, 0);
    assert.ok(!existsSync(d.rt.lockFile) && !existsSync(d.rt.socketPath) && !existsSync(d.rt.keyFile), 'a clean stop removes its PID file, socket and key');

    // A fresh lock file naming a live process (PID 1 stands for a reused PID) does not block either.
    writeFileSync(d.rt.lockFile, '1\n');
    const third = daemon(d.pgdata);
    await serving(d.rt.lockFile, third);
    third.child.kill('SIGTERM');
    assert.equal(await third.exited, 0);
  });
});

after(() => work.cleanup());
