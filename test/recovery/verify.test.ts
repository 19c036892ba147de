/**
 * A restore verifies what it writes: every file of a pgark backup is checked against the
 * backup_manifest inside data.tar, so one byte flipped in a stored data.tar of any codec fails the
 * restore (naming the file when the tar itself stays readable) and leaves nothing behind; what is
 * written is fsynced by pgark restore.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupPrefix } from '../../src/catalog/layout.js';
import { codecExtension, type CodecName } from '../../src/codec/index.js';
import { BACKUP_CODECS } from '../../src/backup/request.js';
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

for (const codec of BACKUP_CODECS) {
  test(`${codec}: an intact backup restores verified; one byte flipped in a file's content in data.tar${codecExtension(codec)} fails the restore`, async () => {
    const ok = await restoreBackup(codec);
    assert.equal(ok.code, 0, ok.stderr);
    const verification = JSON.parse(ok.stdout).download.verification;
    assert.equal(verification.manifest, true);
    assert.ok(verification.files > 500, `every file of the data directory verified (${verification.files})`);
    assert.match(ok.stderr, /verified: all \d+ files of backup_manifest restored/);

    // Uncompressed: inside the rows table's pages, so the tar stays valid and only the manifest can notice.
    // Compressed: the middle of the compressed stream, which holds file content.
    const stored = readFileSync(dataTarPath(codec));
    const offset = codec === 'none' ? contentOffset(stored, rowsFile) + 4000 : Math.floor(stored.length / 2);
    const undo = flipByte(codec, offset);
    try {
      const r = await restoreBackup(codec);
      assertRefused(r, `${codec}, byte ${offset} of ${stored.length}`);
      if (codec === 'none') assert.match(r.stderr, new RegExp(`does not match its backup_manifest: ${rowsFile} has CRC-32C [0-9a-f]{8}, the manifest says [0-9a-f]{8}`));
    } finally {
      undo();
    }
  });
}

test('a file cut from data.tar is reported as listed but missing', async () => {
  const tar = readFileSync(dataTarPath('none'));
  const start = contentOffset(tar, rowsFile) - 512;
  // Renaming the member keeps the tar valid (header checksum recomputed) while the manifest's path is gone.
  const header = Buffer.from(tar.subarray(start, start + 512));
  const renamed = `${rowsFile}x`;
  header.fill(0, 0, 100).write(renamed, 0, 'latin1');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const damaged = Buffer.concat([tar.subarray(0, start), header, tar.subarray(start + 512)]);
  const path = dataTarPath('none');
  writeFileSync(path, damaged);
  try {
    const r = await restoreBackup('none');
    assertRefused(r, 'renamed member');
    assert.match(r.stderr, new RegExp(`${rowsFile} is listed but was not in the backup's archives`));
  } finally {
    writeFileSync(path, tar);
  }
});

test('every restored file and directory is fsynced by pgark restore', async () => {
  const dir = scratchDir('strace');
  try {
    const out = join(dir.path, 'trace');
    const r = await restoreBackup('none', ['strace', '-f', '-y', '-e', 'trace=fsync,fdatasync', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    // -y prints the path of each descriptor fsynced, also on calls that other threads interrupt.
    const synced = new Set([...readFileSync(out, 'utf8').matchAll(/\b(?:fsync|fdatasync)\(\d+<([^>]*)>/g)].map((m) => m[1]));
    const missed = r.tree.filter((p) => !synced.has(p));
    assert.deepEqual(missed, [], `every file and directory of PGDATA fsynced (${synced.size} were)`);
  } finally {
    dir.cleanup();
  }
});
