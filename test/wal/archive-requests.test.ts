/**
 * archive_command answered by the WAL daemon through a request file (src/wal/archive-requests.ts):
 * bin/pgark, finding no marker, leaves the request and waits, and exits 0 only on the marker the
 * daemon writes after the store acknowledged the segment. Real daemon (in this process), real
 * file:// store; PGARK_NODE=/bin/false makes any hand-over to Node visible as exit code 1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readArchiveRequest } from '../../src/wal/archive-requests.js';
import { startWalDaemon, type WalDaemon } from '../../src/wal/daemon.js';
import { fileIdentity, REQUESTS_TAKEN_FILE, walRuntime } from '../../src/wal/runtime.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK_LAUNCHER, craftSegment, fakePgdata } from './helpers.js';

const work = scratchDir('wal-archive-requests');
after(() => work.cleanup());

function launch(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(PGARK_LAUNCHER, args, { cwd, env: { ...process.env, PGARK_NODE: '/bin/false', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('archive requests left by bin/pgark', () => {
  let store: TestStore;
  let client: ObjectStore;
  const daemons: WalDaemon[] = [];

  before(async () => {
    store = await startStore('file');
    client = await openObjectStore(store.resolved('unused'));
  });
  after(async () => {
    for (const d of daemons) await d.close();
    await client.close();
    await store.stop();
  });

  async function setup(label: string) {
    const d = fakePgdata(join(work.path, label));
    writeFileSync(join(d.pgdata, 'cluster.yaml'), store.manifest({ clusterName: 'pg', serverName: label }));
    const daemon = await startWalDaemon({ pgdata: d.pgdata, idleTimeoutMs: 0 });
    daemons.push(daemon);
    const rt = walRuntime(d.pgdata);
    const stored = async () => {
      const keys: string[] = [];
      for await (const e of client.list(`${label}/wals/`)) if (e.object) keys.push(e.object.key);
      return keys;
    };
    return { ...d, daemon, rt, stored };
  }

  test('with no marker, sh leaves a request and exits 0 once the daemon stored the segment, without Node', async () => {
    const s = await setup('stored');
    assert.ok(existsSync(join(s.rt.archiveSpool, REQUESTS_TAKEN_FILE)), 'the daemon says it takes requests');
    for (const seg of ['000000010000000000000001', '000000010000000000000002']) {
      const p = s.addReady(seg, craftSegment(seg));
      const r = await launch(s.pgdata, ['wal-archive', '-f', 'cluster.yaml', p]);
      assert.equal(r.code, 0, `${seg}: ${r.stderr}`);
      assert.ok((await s.stored()).includes(`stored/wals/0000000100000000/${seg}`), `${seg} is in the store`);
      // The answer sh read: the marker of the very file, left for the sweep.
      assert.equal(readFileSync(join(s.rt.archiveSpool, seg), 'utf8').trim(), fileIdentity(join(s.pgdata, p)));
      assert.equal(existsSync(join(s.rt.archiveSpool, `${seg}.request`)), false, 'the request is gone');
    }
    // PGARK_CONFIG instead of -f, %p absolute, from another directory: the daemon reads it as Node would.
    const seg = '000000010000000000000003';
    const p = s.addReady(seg, craftSegment(seg));
    const r = await launch('/', ['wal-archive', join(s.pgdata, p)], { PGARK_CONFIG: join(s.pgdata, 'cluster.yaml') });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await s.stored()).includes(`stored/wals/0000000100000000/${seg}`));
  });

  test('a segment the store holds with other bytes: no marker, sh hands over to Node, which reports the conflict', async () => {
    const s = await setup('conflict');
    const seg = '000000010000000000000004';
    const first = s.addReady(seg, craftSegment(seg));
    assert.equal((await launch(s.pgdata, ['wal-archive', '-f', 'cluster.yaml', first])).code, 0);
    // The same name with other bytes (a forked timeline's history reusing a name, a restored copy...).
    rmSync(join(s.rt.archiveSpool, seg));
    rmSync(join(s.walDir, seg));
    s.addReady(seg, craftSegment(seg, 7300000000000000002n));
    const viaSh = await launch(s.pgdata, ['wal-archive', '-f', 'cluster.yaml', first]);
    assert.equal(viaSh.code, 1, 'handed over to Node (/bin/false): never exit 0 for bytes the store does not hold');
    assert.equal(existsSync(join(s.rt.archiveSpool, seg)), false, 'no marker for the other bytes');
    const viaNode = await launch(s.pgdata, ['wal-archive', '-f', 'cluster.yaml', first], { PGARK_NODE: process.execPath });
    assert.notEqual(viaNode.code, 0);
    assert.match(viaNode.stderr, /pgark wal-archive: WAL file 000000010000000000000004 is already archived as .* with different content/);
  });

  test('sh leaves no request for a daemon that does not say it takes them', async () => {
    const s = await setup('not-taken');
    rmSync(join(s.rt.archiveSpool, REQUESTS_TAKEN_FILE));
    const seg = '000000010000000000000005';
    const p = s.addReady(seg, craftSegment(seg));
    assert.equal((await launch(s.pgdata, ['wal-archive', '-f', 'cluster.yaml', p])).code, 1, 'to Node');
    assert.deepEqual(readdirSync(s.rt.archiveSpool), [], 'no request left, nothing stored ahead');
  });

  test('the daemon takes a request only once complete, and only for a file in its own pg_wal', async () => {
    const s = await setup('planted');
    const outside = join(work.path, 'planted', 'elsewhere');
    mkdirSync(outside);
    const seg = '000000010000000000000006';
    writeFileSync(join(outside, seg), craftSegment(seg));
    const request = join(s.rt.archiveSpool, `${seg}.request`);
    writeFileSync(request, [outside, '', 'wal-archive', '-f', join(s.pgdata, 'cluster.yaml'), seg, '.', ''].join('\n'));
    for (let i = 0; i < 100 && existsSync(request); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(request), false, 'dropped');
    assert.deepEqual(await s.stored(), [], 'a file outside pg_wal is never archived');

    // Written in two steps: nothing happens until the "." line.
    const p = s.addReady(seg, craftSegment(seg));
    writeFileSync(request, [s.pgdata, '', 'wal-archive', '-f', 'cluster.yaml', p, ''].join('\n'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(request), true, 'incomplete: left alone');
    assert.deepEqual(await s.stored(), []);
    writeFileSync(request, '.\n', { flag: 'a' });
    for (let i = 0; i < 200 && existsSync(request); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(request), false);
    assert.deepEqual(await s.stored(), [`planted/wals/0000000100000000/${seg}`]);
  });
});

test('readArchiveRequest: the command line as the Node client reads it, in the caller\'s directory', () => {
  const text = (...lines: string[]) => `${lines.join('\n')}\n`;
  assert.equal(readArchiveRequest(text('/data', '', 'wal-archive', '-f', 'c.yaml', 'pg_wal/X')), undefined, 'no end line');
  assert.deepEqual(readArchiveRequest(text('/data', '', 'wal-archive', '-f', 'c.yaml', '--cluster', 'pg', 'pg_wal/X', '.')), {
    path: '/data/pg_wal/X',
    config: { files: ['/data/c.yaml'], cluster: 'pg' },
  });
  assert.deepEqual(readArchiveRequest(text('/data', '/etc/c.yaml', 'wal-archive', 'pg_wal/X', '.'))?.config, { files: ['/etc/c.yaml'] });
  assert.throws(() => readArchiveRequest(text('/data', '', 'wal-restore', '-f', 'c.yaml', 'X', 'pg_wal/Y', '.')), /not a wal-archive/);
  assert.throws(() => readArchiveRequest(text('data', '', 'wal-archive', '-f', 'c.yaml', 'pg_wal/X', '.')), /not a wal-archive/);
  assert.throws(() => readArchiveRequest(text('/data', '', 'wal-archive', 'pg_wal/X', '.')), /no manifest/);
  assert.throws(() => readArchiveRequest(text('/data', '', 'wal-archive', '--no-daemon', '-f', 'c.yaml', 'pg_wal/X', '.')), /for Node/);
});
