/**
 * A restore verifies what it writes: each stored object of a pgark backup against the SHA-256
 * recorded in backup.info, every file against the backup_manifest inside data.tar, so one byte
 * flipped anywhere in a stored data.tar of any codec fails the restore (naming the object) and
 * leaves nothing behind; what is written is fsynced by pgark restore.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { backupPrefix } from '../../src/catalog/layout.js';
import { codecExtension, type CodecName } from '../../src/codec/index.js';
import { BACKUP_CODECS } from '../../src/backup/request.js';
import { AUTO_CONF, RECOVERY_SIGNAL } from '../../src/recovery/settings.js';
import { CHECK_EMPTY_MARKER } from '../../src/util/cnpg.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { archiveCurrentWal, backupOrigin, insertBatch, recoveryManifest, restore, startOrigin, type Origin } from './helpers.js';

const SERVER = 'verified';
let store: TestStore;
let origin: Origin;
const ids = new Map<CodecName, string>();
/** data.tar member name of the `rows` table's first segment, e.g. base/5/16384. */
let rowsFile: string;

before(async () => {
  store = await startStore('file');
  origin = await startOrigin(store, { clusterName: SERVER });
  await insertBatch(origin.pg, 1, 2000);
  rowsFile = (await origin.pg.query<{ path: string }>("SELECT pg_relation_filepath('rows') AS path"))[0].path;
  for (const codec of BACKUP_CODECS) ids.set(codec, await backupOrigin(origin, ['--compression', codec]));
  await archiveCurrentWal(origin.pg);
});

after(async () => {
  await origin?.pg.destroy();
  await store?.stop();
});

function dataTarPath(codec: CodecName): string {
  const root = store.destinationPath.replace(/^file:\/\//, '');
  return join(root, backupPrefix(SERVER, ids.get(codec)!), `data.tar${codecExtension(codec)}`);
}

/** Flips one byte of the stored data.tar; returns a function putting it back. */
function flipByte(codec: CodecName, offset: number): () => void {
  const path = dataTarPath(codec);
  const original = readFileSync(path);
  assert.ok(offset > 0 && offset < original.length, `offset ${offset} inside ${original.length} bytes`);
  const damaged = Buffer.from(original);
  damaged[offset] ^= 0xff;
  writeFileSync(path, damaged);
  return () => writeFileSync(path, original);
}

/** Where the content of `member` begins in an uncompressed tar (after its 512-byte ustar header). */
function contentOffset(tar: Buffer, member: string): number {
  for (let at = 0; at + 512 <= tar.length; at += 512) {
    if (tar.subarray(at, at + 100).toString('latin1').replace(/\0.*$/s, '') === member && tar[at + 156] === '0'.charCodeAt(0)) return at + 512;
  }
  throw new Error(`${member} not found in the tar`);
}

async function restoreBackup(codec: CodecName, wrapper: string[] = []) {
  const manifest = recoveryManifest(store, { name: `restored-${codec}`, sourceName: SERVER, recoveryTarget: { backupID: ids.get(codec), targetImmediate: true } });
  const { result, recovered } = await restore(manifest, ['--json'], wrapper);
  const left = existsSync(recovered.pgdata) ? readdirSync(recovered.pgdata) : [];
  const tree = left.length ? (readdirSync(recovered.pgdata, { recursive: true }) as string[]).map((p) => join(recovered.pgdata, p)) : [];
  await recovered.destroy();
  return { ...result, left, tree: [recovered.pgdata, ...tree] };
}

function assertRefused(r: { code: number; stderr: string; left: string[] }, what: string): void {
  assert.equal(r.code, 1, `${what}: the restore must fail:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /data directory ready/, what);
  assert.deepEqual(r.left, [], `${what}: nothing of the damaged backup is left:\n${r.stderr}`);
}

function backupInfoPath(codec: CodecName): string {
  return join(dirname(dataTarPath(codec)), 'backup.info');
}

/** Runs `fn` with the digest line taken out of the backup's backup.info, as an older pgark wrote it. */
async function withoutDigests<T>(codec: CodecName, fn: () => Promise<T>): Promise<T> {
  const path = backupInfoPath(codec);
  const original = readFileSync(path, 'utf8');
  const stripped = original.replace(/^#pgark_object_sha256 = .*\n/m, '');
  assert.notEqual(stripped, original, 'pgark recorded the digests');
  writeFileSync(path, stripped);
  try {
    return await fn();
  } finally {
    writeFileSync(path, original);
  }
}

/** Restores with the byte at `offset` flipped and asserts the restore fails naming data.tar[.ext]. */
async function assertFlipRefused(codec: CodecName, offset: number, what: string): Promise<void> {
  const size = readFileSync(dataTarPath(codec)).length;
  const undo = flipByte(codec, offset);
  try {
    const r = await restoreBackup(codec);
    assertRefused(r, `${codec}, ${what}: byte ${offset} of ${size}`);
    assert.match(r.stderr, new RegExp(`the stored object \\S*/data\\.tar${codecExtension(codec).replace('.', '\\.')} is damaged`), `${codec}, ${what}: the object is named`);
  } finally {
    undo();
  }
}

for (const codec of BACKUP_CODECS) {
  test(`${codec}: an intact backup restores verified; one byte flipped anywhere in data.tar${codecExtension(codec)}, the last one included, fails the restore naming it`, async () => {
    const ok = await restoreBackup(codec);
    assert.equal(ok.code, 0, ok.stderr);
    const download = JSON.parse(ok.stdout).download;
    assert.equal(download.verification.manifest, true);
    assert.ok(download.verification.files > 500, `every file of the data directory verified (${download.verification.files})`);
    assert.deepEqual(download.objects, { digests: true, objects: 1 });
    assert.match(ok.stderr, /verified: all 1 stored object\(s\) have the SHA-256 recorded in backup.info/);
    assert.match(ok.stderr, /verified: all \d+ files of backup_manifest restored/);

    const size = readFileSync(dataTarPath(codec)).length;
    for (const [what, offset] of [
      ['a quarter in', Math.floor(size / 4)],
      ['the middle', Math.floor(size / 2)],
      ['the last byte', size - 1],
    ] as const) {
      await assertFlipRefused(codec, offset, what);
    }
  });
}

/** ustar header field offsets (POSIX): the manifest lists none of them but the name and size. */
const MTIME = 136;
const CHECKSUM = 148;

/** Rewrites the header at `start` with `edit` applied and its checksum recomputed, so the tar stays valid. */
function editHeader(tar: Buffer, start: number, edit: (header: Buffer) => void): Buffer {
  const header = Buffer.from(tar.subarray(start, start + 512));
  edit(header);
  header.fill(' ', CHECKSUM, CHECKSUM + 8);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, CHECKSUM, 'latin1');
  return Buffer.concat([tar.subarray(0, start), header, tar.subarray(start + 512)]);
}

test('none: a flip the tar and the manifest cannot see (padding after a file, a header mtime, the end-of-archive blocks) fails the restore naming data.tar', async () => {
  const tar = readFileSync(dataTarPath('none'));
  const version = contentOffset(tar, './PG_VERSION');
  // PG_VERSION holds a few bytes; the rest of its 512-byte block is padding no reader looks at.
  await assertFlipRefused('none', version + 100, 'the padding after PG_VERSION');
  // The end-of-archive region: two zero blocks that tar readers skip.
  await assertFlipRefused('none', tar.length - 700, 'the end-of-archive blocks');

  const path = dataTarPath('none');
  const start = contentOffset(tar, rowsFile) - 512;
  // An mtime one second later, with a correct header checksum: a valid tar with the same files and contents.
  writeFileSync(path, editHeader(tar, start, (h) => h.write(`${(Number.parseInt(h.toString('latin1', MTIME, MTIME + 11), 8) + 1).toString(8).padStart(11, '0')}\0`, MTIME, 'latin1')));
  try {
    const r = await restoreBackup('none');
    assertRefused(r, 'mtime changed');
    assert.match(r.stderr, /the stored object \S*\/data\.tar is damaged: its SHA-256 is [0-9a-f]{64}, backup.info recorded [0-9a-f]{64}/);
  } finally {
    writeFileSync(path, tar);
  }
});

/** Start and end of every lz4 frame (magic 0x184D2204) in a stream of concatenated frames. */
function lz4Frames(buf: Buffer): { start: number; end: number }[] {
  const frames: { start: number; end: number }[] = [];
  for (let at = 0; at < buf.length; ) {
    assert.equal(buf.readUInt32LE(at), 0x184d2204, `lz4 frame magic at ${at}`);
    const flags = buf[at + 4];
    let p = at + 6 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0) + 1;
    for (let block = buf.readUInt32LE(p); block !== 0; block = buf.readUInt32LE(p)) p += 4 + (block & 0x7fffffff) + (flags & 0x10 ? 4 : 0);
    p += 4 + (flags & 0x04 ? 4 : 0);
    frames.push({ start: at, end: p });
    at = p;
  }
  return frames;
}

function lz4Decode(frame: Buffer): { code: number | null; out: Buffer } {
  const r = spawnSync('lz4', ['-d', '-c'], { input: frame, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: r.stdout };
}

/**
 * A flip inside a frame that lz4 decodes, checksum and all, into the very same bytes: a match
 * offset changed within a run of zeros still copies zeros. This is how the old manifest-only check
 * let about 1 restore in 11 of a damaged lz4 backup succeed.
 */
function harmlessLz4Flip(tar: Buffer, frames: { start: number; end: number }[]): number | undefined {
  for (const f of frames) {
    const frame = tar.subarray(f.start, f.end);
    const good = lz4Decode(frame).out;
    for (let i = 0, at = f.start + 64; i < 300 && at < f.end - 8; i++, at += 7) {
      const damaged = Buffer.from(frame);
      damaged[at - f.start] ^= 0xff;
      const r = lz4Decode(damaged);
      if (r.code === 0 && r.out.equals(good)) return at;
    }
  }
  return undefined;
}

test('lz4: a flip in the first and last three frames and a dozen between (at the magic, middle or last byte in turn) and a flip lz4 itself decodes to the right bytes all fail the restore', async () => {
  const tar = readFileSync(dataTarPath('lz4'));
  const frames = lz4Frames(tar);
  assert.equal(frames[frames.length - 1].end, tar.length, 'the frames cover the whole object');
  const harmless = harmlessLz4Flip(tar, frames);
  assert.ok(harmless !== undefined, 'a flip that lz4 decodes into the original bytes exists in the data directory (zero runs)');
  await assertFlipRefused('lz4', harmless, 'a flip lz4 decodes into the original bytes');
  // One restore per frame checked, the kinds of position rotating over them. A restore for every frame
  // took 580 s of the suite once lz4 frames became 64 KiB (hundreds per object): the first and last
  // three and a dozen spread between stand for the rest.
  const sampled = [...new Set([0, 1, 2, ...Array.from({ length: 12 }, (_, i) => Math.floor(((i + 1) * frames.length) / 13)), frames.length - 3, frames.length - 2, frames.length - 1])]
    .filter((n) => n >= 0 && n < frames.length)
    .sort((a, b) => a - b);
  assert.ok(sampled.length >= Math.min(frames.length, 15), `${sampled.length} of ${frames.length} frames sampled`);
  for (const [k, n] of sampled.entries()) {
    const f = frames[n];
    const [what, offset] = (
      [
        ['middle', Math.floor((f.start + f.end) / 2)],
        ['last byte', f.end - 1],
        ['magic', f.start],
      ] as const
    )[k % 3];
    // flipByte refuses byte 0: a stream that is not lz4 from its first byte on fails without any digest.
    await assertFlipRefused('lz4', offset || 1, `frame ${n + 1} of ${frames.length}, ${what}`);
  }
});

test('an object backup.info records no digest for (a stray data_0001.tar) fails the restore before anything is downloaded', async () => {
  const stray = join(dirname(dataTarPath('none')), 'data_0001.tar');
  writeFileSync(stray, readFileSync(dataTarPath('none')));
  try {
    const r = await restoreBackup('none');
    assertRefused(r, 'stray part');
    assert.match(r.stderr, /the stored object \S*\/data_0001\.tar is damaged: backup.info records no SHA-256 for it/);
    assert.doesNotMatch(r.stderr, /downloaded .* of/, 'refused before the download');
  } finally {
    rmSync(stray);
  }
});

test('without recorded digests (an older pgark backup), a byte flipped in a file\'s content is still caught by the manifest', async () => {
  const tar = readFileSync(dataTarPath('none'));
  // Inside the rows table's pages, so the tar stays valid and only the manifest can notice.
  const offset = contentOffset(tar, rowsFile) + 4000;
  await withoutDigests('none', async () => {
    const intact = await restoreBackup('none');
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stderr, /stored objects NOT verified as a whole: backup.info records no SHA-256/);
    assert.deepEqual(JSON.parse(intact.stdout).download.objects.digests, false);
    const undo = flipByte('none', offset);
    try {
      const r = await restoreBackup('none');
      assertRefused(r, `none without digests, byte ${offset}`);
      assert.match(r.stderr, new RegExp(`does not match its backup_manifest: ${rowsFile} has CRC-32C [0-9a-f]{8}, the manifest says [0-9a-f]{8}`));
    } finally {
      undo();
    }
  });
});

test('a file cut from data.tar is reported as listed but missing', async () => {
  const tar = readFileSync(dataTarPath('none'));
  const start = contentOffset(tar, rowsFile) - 512;
  // Renaming the member keeps the tar valid (header checksum recomputed) while the manifest's path is gone.
  const damaged = editHeader(tar, start, (h) => h.fill(0, 0, 100).write(`${rowsFile}x`, 0, 'latin1'));
  const path = dataTarPath('none');
  writeFileSync(path, damaged);
  try {
    const r = await withoutDigests('none', () => restoreBackup('none'));
    assertRefused(r, 'renamed member');
    assert.match(r.stderr, new RegExp(`${rowsFile} is listed but was not in the backup's archives`));
  } finally {
    writeFileSync(path, tar);
  }
});

/**
 * Where, in an `strace -f -y` trace, each path's first fsync returned 0, and the line of the first write
 * to stderr matching `report`. An fsync another thread interrupts is printed as "<unfinished ...>"
 * and completed by a "<... fsync resumed>" line of the same pid, which carries no path.
 */
function fsyncsBefore(trace: string, report: RegExp): { done: Map<string, number>; reportLine: number } {
  const done = new Map<string, number>();
  const pending = new Map<string, string>();
  let reportLine = -1;
  const first = (path: string, i: number) => done.has(path) || done.set(path, i);
  trace.split('\n').forEach((line, i) => {
    const pid = line.split(' ', 1)[0];
    const call = /\b(?:fsync|fdatasync)\(\d+<([^>]*)>(.*)$/.exec(line);
    if (call) {
      if (call[2].includes('<unfinished')) pending.set(pid, call[1]);
      else if (/= 0$/.test(call[2])) first(call[1], i);
      return;
    }
    const resumed = /<\.\.\. (?:fsync|fdatasync) resumed>.*= 0$/.test(line) ? pending.get(pid) : undefined;
    if (resumed !== undefined) {
      first(resumed, i);
      pending.delete(pid);
    }
    if (reportLine < 0 && /\bwrite\(2</.test(line) && report.test(line)) reportLine = i;
  });
  return { done, reportLine };
}

test('every restored file and directory is fsynced by pgark restore before it reports the files restored', async () => {
  const dir = scratchDir('strace');
  try {
    const out = join(dir.path, 'trace');
    const r = await restoreBackup('none', ['strace', '-f', '-y', '-s', '200', '-e', 'trace=fsync,fdatasync,write', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const { done, reportLine } = fsyncsBefore(readFileSync(out, 'utf8'), /restored \d+ files/);
    assert.ok(reportLine > 0, 'the trace holds the "restored N files" report');
    const missed = r.tree.filter((p) => !done.has(p));
    assert.deepEqual(missed, [], `every file and directory of PGDATA fsynced (${done.size} were)`);
    // The recovery settings are written (and fsynced) after the download is reported.
    const settings = new Set([AUTO_CONF, RECOVERY_SIGNAL, CHECK_EMPTY_MARKER].map((f) => join(r.tree[0], f)));
    const late = r.tree.filter((p) => !settings.has(p) && done.get(p)! > reportLine);
    assert.deepEqual(late, [], 'no restored file or directory is made durable after the restore reports it restored');
  } finally {
    dir.cleanup();
  }
});
