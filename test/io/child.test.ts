import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ChildProcessError, ChildStream } from '../../src/io/child.js';
import { collect } from '../../src/io/collect.js';
import { scratchDir } from '../harness/tmp.js';
import { CHUNK, acceptedWhileStalled } from '../codec/helpers.js';
import { randomBytes } from 'node:crypto';

const sh = (script: string, opts: ConstructorParameters<typeof ChildStream>[2] = {}) => new ChildStream('sh', ['-c', script], { label: 'the-tool', ...opts });

test('a filter passes bytes through the program', async () => {
  const data = randomBytes(3 * CHUNK + 17);
  const out = await collect(Readable.from([data]).pipe(new ChildStream('cat', [])));
  assert.ok(out.equals(data));
});

test('a non-zero exit is an error naming the program, with its stderr', async () => {
  const err = await pipeline(Readable.from([Buffer.from('x')]), sh('cat >/dev/null; echo "disk on fire" >&2; exit 3'), new Writable({ write: (_c, _e, cb) => cb() })).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err instanceof ChildProcessError, String(err));
  assert.match(err.message, /^the-tool exited with status 3:\n {4}disk on fire$/);
});

test('a program killed by a signal is an error', async () => {
  await assert.rejects(collect(sh('kill -9 $$', { stdin: false })), /the-tool was killed by SIGKILL/);
});

test('the stream does not end before the exit: stdout closed early, then a failure, is still an error', async () => {
  // The program writes everything and closes stdout, and only then fails: what was read is not a clean end.
  await assert.rejects(collect(sh('echo partial; exec >&-; exit 1', { stdin: false })), /the-tool exited with status 1/);
});

test('stderr output fails a program that is silent on success, and not one that prints notices', async () => {
  const script = 'echo data; echo "NOTICE: something" >&2';
  await assert.rejects(collect(sh(script, { stdin: false, stderrIsFailure: true })), /the-tool reported an error:\n {4}NOTICE: something/);
  assert.equal((await collect(sh(script, { stdin: false }))).toString(), 'data\n');
});

test('a program that cannot start is an error naming it', async () => {
  await assert.rejects(collect(new ChildStream('/nonexistent/tool', [], { stdin: false })), /\/nonexistent\/tool could not be started: .*ENOENT/);
});

test('a program that stops reading its input early is an error even with exit 0', async () => {
  const input = Readable.from((function* () {
    for (let i = 0; i < 64; i++) yield randomBytes(CHUNK);
  })());
  await assert.rejects(pipeline(input, new ChildStream('head', ['-c', '10']), new Writable({ write: (_c, _e, cb) => cb() })), /head stopped reading its input/);
});

test('a consumer is killed before its stdin closes when the stream upstream fails', async () => {
  const dir = scratchDir('io-child');
  try {
    const mark = join(dir.path, 'saw-eof');
    // The mark is written only if the program sees the end of its input: what psql would take as "commit".
    const consumer = sh(`cat >/dev/null; touch ${mark}`, { stdout: false });
    const source = new Readable({ read() {} });
    source.push(Buffer.from('BEGIN; INSERT ...'));
    const running = pipeline(source, consumer);
    source.destroy(new Error('checksum mismatch'));
    await assert.rejects(running, /checksum mismatch/);
    if (consumer.child.exitCode === null && consumer.child.signalCode === null) await once(consumer.child, 'close');
    assert.equal(consumer.child.signalCode, 'SIGKILL');
    assert.equal(existsSync(mark), false, 'the consumer saw a clean end of input');
  } finally {
    dir.cleanup();
  }
});

test('a consumer finishes only after its exit status is known', async () => {
  await assert.rejects(pipeline(Readable.from([Buffer.from('x')]), sh('cat >/dev/null; exit 2', { stdout: false })), /the-tool exited with status 2/);
  await pipeline(Readable.from([Buffer.from('x')]), sh('cat >/dev/null', { stdout: false }));
});

test('a program without stdin or stdout reports through success()', async () => {
  await assert.rejects(sh('exit 4', { stdin: false, stdout: false }).success(), /the-tool exited with status 4/);
  await sh('exit 0', { stdin: false, stdout: false }).success();
});

test('backpressure: a filter whose output is not read stops taking input', async () => {
  const { accepted } = await acceptedWhileStalled(new ChildStream('cat', []), () => randomBytes(CHUNK));
  // cat holds nothing; the two pipes (64 KiB each on Linux) and the stream buffers do.
  assert.ok(accepted > 0 && accepted < 2 * 1024 * 1024, `cat accepted ${accepted} bytes`);
});
