/**
 * The whole-object digests in backup.info: a comment line that barman 3.4's own loader (the real
 * Python module) skips, which pgark reads back exactly and refuses when it is malformed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyBackupInfo, parseBackupInfo, serializeBackupInfo, type BackupInfo } from '../../src/catalog/backup-info.js';
import { runBarmanPython } from '../catalog/barman-python.js';

const DIGESTS = { 'data.tar.gz': 'a'.repeat(64), '16385.tar.gz': '0123456789abcdef'.repeat(4) };

function withDigests(): BackupInfo {
  return { ...emptyBackupInfo('20240101T000000'), status: 'DONE', server_name: 'cloud', size: 42, pgark_object_sha256: DIGESTS };
}

test('the digests are one comment line after barman 3.4\'s keys, read back by pgark', () => {
  const text = serializeBackupInfo(withDigests());
  const lines = text.trimEnd().split('\n');
  assert.match(lines[lines.length - 1], /^#pgark_object_sha256 = \{'data\.tar\.gz': 'a{64}', '16385\.tar\.gz': '(0123456789abcdef){4}'\}$/);
  assert.equal(serializeBackupInfo({ ...withDigests(), pgark_object_sha256: undefined }), lines.slice(0, -1).join('\n') + '\n', 'otherwise barman\'s key set, unchanged');
  assert.deepEqual(parseBackupInfo(text, '20240101T000000').pgark_object_sha256, DIGESTS);
  assert.equal(parseBackupInfo(serializeBackupInfo(emptyBackupInfo('20240101T000000')), '20240101T000000').pgark_object_sha256, undefined);
});

test('barman 3.4 loads a backup.info carrying the digests and saves it without them', () => {
  const text = serializeBackupInfo(withDigests());
  const py = runBarmanPython(
    `
b = BackupInfo(inp["id"])
b.load(file_object=io.BytesIO(inp["text"].encode("utf-8")))
buf = io.BytesIO()
b.save(file_object=buf)
out = {"saved": buf.getvalue().decode("utf-8"), "status": b.status, "size": b.size}
`,
    { id: '20240101T000000', text },
  );
  assert.equal(py.status, 'DONE');
  assert.equal(py.size, 42);
  assert.equal(py.saved, serializeBackupInfo({ ...withDigests(), pgark_object_sha256: undefined }));
});

test('a malformed digest line makes backup.info unreadable instead of unchecked', () => {
  const good = serializeBackupInfo(withDigests());
  for (const [what, line] of [
    ['a short digest', "#pgark_object_sha256 = {'data.tar': 'abc'}"],
    ['not a dict', "#pgark_object_sha256 = ['data.tar']"],
    ['not a literal', '#pgark_object_sha256 = {data.tar: x}'],
  ]) {
    const text = good.replace(/^#pgark_object_sha256 = .*$/m, line);
    assert.throws(() => parseBackupInfo(text, '20240101T000000'), /#pgark_object_sha256: /, what);
  }
});
