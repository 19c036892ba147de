/** Pure pieces of the config layer: hints, recovery target formats, destination URL kinds, loading edge cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closestWord, editDistance, markdownLinkHint, placeholderIn, unknownKeyHint } from '../../src/config/hints.js';
import { isTargetTime } from '../../src/config/target-time.js';
import { destinationKind } from '../../src/config/rules.js';
import { findCluster, imageMajorVersion, loadManifests } from '../../src/config/index.js';
import { ConfigError, UserError } from '../../src/util/errors.js';
import { scratchDir } from '../harness/tmp.js';

test('edit distance and closest word', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(closestWord('destinationPth', ['destinationPath', 'endpointURL']), 'destinationPath');
  assert.equal(closestWord('ServiceAccountTemplate', ['serviceAccountTemplate', 'storage']), 'serviceAccountTemplate');
  assert.equal(closestWord('zzzzzz', ['destinationPath', 'endpointURL']), undefined);
});

test('unknown-key hints prefer wrong indentation over spelling', () => {
  const around = { here: ['connectionString', 'storageAccount'], parent: { name: 'azureCredentials', keys: ['wal', 'data', 'azureCredentials'] }, children: [] };
  assert.match(unknownKeyHint('wal', around)!, /belongs one level up, next to "azureCredentials"/);
  assert.match(unknownKeyHint('storageAcount', around)!, /did you mean "storageAccount"\?/);
  const down = { here: ['barmanObjectStore', 'retentionPolicy'], children: [{ name: 'barmanObjectStore', keys: ['destinationPath'] }] };
  assert.match(unknownKeyHint('destinationPath', down)!, /belongs inside "barmanObjectStore"/);
  assert.equal(unknownKeyHint('nothingLikeIt', down), undefined);
});

test('Markdown links and placeholders are recognised', () => {
  assert.equal(markdownLinkHint('endpointURL: [https://a.b](https://a.b)'), 'this looks like a Markdown link; write the bare URL: https://a.b');
  assert.equal(markdownLinkHint('https://a.b'), undefined);
  // A pasted link may carry credentials: the hint repeats the URL without them.
  assert.equal(markdownLinkHint('destinationPath: [https://u:p4ss@a.b/c?sig=s3cr3t](https://u:p4ss@a.b/c?sig=s3cr3t)'), 'this looks like a Markdown link; write the bare URL: https://a.b/c');
  assert.equal(placeholderIn('$backup-name'), '$backup-name');
  assert.equal(placeholderIn('${NAME}'), '${NAME}');
  assert.equal(placeholderIn('<cluster-name>'), '<cluster-name>');
  assert.equal(placeholderIn('{{ .Values.name }}'), '{{ .Values.name }}');
  assert.equal(placeholderIn('grafana-pg'), undefined);
});

test('targetTime accepts every form CNPG accepts and nothing else', () => {
  for (const ok of [
    '2024-05-01 12:00:00',
    '2024-05-01 12:00:00.123456',
    '2024-05-01 12:00:00.123456+02',
    '2024-05-01 12:00:00.123456-05:30',
    '2024-05-01 12:00:00+02',
    '2024-05-01T12:00:00Z',
    '2024-05-01T12:00:00+02:00',
    '2024-05-01T12:00:00.123456Z',
    '2024-05-01T12:00:00.123456-07:00',
    '2024-05-01T12:00:00',
    '2024-02-29 00:00:00',
  ]) {
    assert.ok(isTargetTime(ok), ok);
  }
  for (const bad of ['2024-05-01', '01/05/2024 12:00', '2024-05-01 25:00:00', '2023-02-29 00:00:00', '2024-13-01T00:00:00Z', '2024-05-01T12:00:00+0200', 'yesterday']) {
    assert.ok(!isTargetTime(bad), bad);
  }
});

test('destination URL kinds', () => {
  assert.equal(destinationKind('s3://bucket/path'), 's3');
  assert.equal(destinationKind('gs://bucket'), 'google');
  assert.equal(destinationKind('file:///var/backups'), 'file');
  assert.equal(destinationKind('https://acct.blob.core.windows.net/container/x'), 'azure');
  assert.equal(destinationKind('http://127.0.0.1:10000/devstoreaccount1/container'), 'azure');
  assert.equal(destinationKind('your s3 backup path'), undefined);
  assert.equal(destinationKind('https://host-only'), undefined);
});

test('other kinds are noted and skipped; a missing -f path, manifest text given in its place (never repeated) and an empty -f list are clear errors', async () => {
  const dir = scratchDir('kinds');
  try {
    const file = join(dir.path, 'mixed.yml');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n---\napiVersion: postgresql.cnpg.io/v1\nkind: Pooler\nmetadata: {name: pool}\nspec: {}\n---\n# only a comment\n---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\nspec:\n  backup:\n    barmanObjectStore: {destinationPath: "file:///tmp/x"}\n`,
    );
    const set = await loadManifests([dir.path]);
    assert.equal(set.clusters.length, 1);
    assert.deepEqual(set.notes, [
      `${file}: ConfigMap/settings (v1) is not a kind pgark reads; ignored`,
      `${file}: Pooler/pool (postgresql.cnpg.io/v1) is not a kind pgark reads; ignored`,
    ]);
    const missing = await loadManifests([join(dir.path, 'nope.yaml')]).catch((e: unknown) => e);
    assert.ok(missing instanceof ConfigError);
    assert.match(missing.message, /cannot read manifest ".*nope\.yaml": no such file or directory/);
    const secretText = 'apiVersion: v1\nkind: Secret\nmetadata: {name: s3}\nstringData: {ACCESS_KEY_ID: sekrit-value}\n';
    const asText = await loadManifests([secretText]).catch((e: unknown) => e);
    assert.ok(asText instanceof ConfigError);
    assert.match(asText.message, /cannot read manifest given as 5 lines of text, not a path/);
    assert.doesNotMatch(asText.message, /sekrit-value|kind: Secret/);
    const none = await loadManifests([]).catch((e: unknown) => e);
    assert.ok(none instanceof UserError);
    assert.equal(none.message, 'no manifest given');
  } finally {
    dir.cleanup();
  }
});

test('all problems of a file are reported together, sorted by position', async () => {
  const err = await loadManifests(['test/fixtures/manifests/seed/verbatim/recovery-azure-aligned.yaml']).catch((e: unknown) => e);
  assert.ok(err instanceof ConfigError);
  assert.ok(err.issues.length >= 6, String(err.issues.length));
  const lines = err.issues.map((i) => i.position?.line ?? 0);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
});

test('imageName: only the major version of the tag is read', () => {
  assert.equal(imageMajorVersion('ghcr.io/cloudnative-pg/postgresql:15'), 15);
  assert.equal(imageMajorVersion('ghcr.io/cloudnative-pg/postgresql:16.4-bookworm'), 16);
  assert.equal(imageMajorVersion('registry:5000/postgresql:17.2'), 17);
  assert.equal(imageMajorVersion('postgres:latest'), undefined);
  assert.equal(imageMajorVersion(undefined), undefined);
});

test('findCluster: the only Cluster, or the one named; otherwise a hint listing the names', async () => {
  const dir = scratchDir('clusters');
  try {
    const doc = (name: string) => `apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: ${name}}\nspec: {instances: 1}\n`;
    writeFileSync(join(dir.path, 'a.yaml'), doc('alpha'));
    writeFileSync(join(dir.path, 'b.yaml'), doc('beta'));
    const set = await loadManifests([dir.path]);
    assert.equal(findCluster(set, 'beta').metadata.name, 'beta');
    assert.throws(() => findCluster(set), (e: unknown) => e instanceof UserError && /found 2/.test(e.message) && e.hint === 'choose one with --cluster (alpha, beta)');
    assert.throws(() => findCluster(set, 'gamma'), (e: unknown) => e instanceof UserError && e.message === 'no Cluster named "gamma" in the manifests');
    const one = await loadManifests([join(dir.path, 'a.yaml')]);
    assert.equal(findCluster(one).metadata.name, 'alpha');
  } finally {
    dir.cleanup();
  }
});
