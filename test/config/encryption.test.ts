/**
 * Where the age keys come from: the Cluster annotation pgark.io/encryption (own store, and the
 * recovering Cluster's keys for an externalClusters source), the CNPG-I plugin parameter
 * encryptionSecret (over the annotation), and key files for logical dumps. Errors name the Secret,
 * key and line, never a value. The Kubernetes API is not involved: Secrets come from -f manifests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ageKeysFromFiles, clusterObjectStore, externalClusterObjectStore, findCluster, loadContext } from '../../src/config/index.js';
import { targetStoreRef } from '../../src/config/plugin-form.js';
import { manifestObjectStoreSource, PluginConfig, readCluster } from '../../src/plugin/config.js';
import { scratchDir } from '../harness/tmp.js';

const dir = scratchDir('enc-config');
test.after(() => dir.cleanup());
execFileSync('age-keygen', ['-o', join(dir.path, 'k')], { stdio: 'ignore' });
const identity = readFileSync(join(dir.path, 'k'), 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
const recipient = execFileSync('age-keygen', ['-y', join(dir.path, 'k')], { encoding: 'utf8' }).trim();

function manifest(name: string, annotations: string, secret: string): string {
  const file = join(dir.path, name);
  writeFileSync(
    file,
    `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
${annotations}
spec:
  instances: 1
  backup:
    barmanObjectStore: {destinationPath: "file:///tmp/x"}
  externalClusters:
  - name: old
    barmanObjectStore: {destinationPath: "file:///tmp/y"}
---
apiVersion: v1
kind: Secret
metadata: {name: age-keys}
stringData:
${secret}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store}
spec:
  configuration: {destinationPath: "file:///tmp/z"}
`,
  );
  return file;
}

test('the annotation gives the own and the external store its keys; comments and blank lines are skipped', async () => {
  const file = manifest('ok.yaml', '  annotations: {pgark.io/encryption: age-keys}', `  recipients: "# current\\n${recipient}\\n\\n"\n  identity: "${identity}\\n"`);
  const ctx = await loadContext({ files: [file] });
  const cluster = findCluster(ctx.manifests);
  const own = await clusterObjectStore(ctx, cluster);
  assert.deepEqual(own.age, { recipients: [recipient], identities: [identity], passphrase: undefined });
  assert.deepEqual((await externalClusterObjectStore(ctx, cluster, 'old')).age?.identities, [identity]);
  assert.equal(JSON.stringify(own.credentialSource).includes('AGE-SECRET'), false);
});

test('without the annotation nothing is encrypted; the plugin parameter names a Secret by itself', async () => {
  const file = manifest('plain.yaml', '', `  recipients: "${recipient}"`);
  const ctx = await loadContext({ files: [file] });
  assert.equal((await clusterObjectStore(ctx, findCluster(ctx.manifests))).age, undefined);
  const config = new PluginConfig(manifestObjectStoreSource(ctx.manifests), ctx);
  const cluster = readCluster(Buffer.from(JSON.stringify({ metadata: { name: 'pg' }, spec: { plugins: [{ name: 'p', parameters: { barmanObjectName: 'store', encryptionSecret: 'age-keys' } }] } })));
  const ref = targetStoreRef(cluster, 'p');
  assert.equal(ref.encryption?.secret, 'age-keys');
  assert.deepEqual((await config.resolve(ref)).age?.recipients, [recipient]);
});

test('a bad key or a Secret without any age key is refused, naming where, never the value', async () => {
  const bad = manifest('bad.yaml', '  annotations: {pgark.io/encryption: age-keys}', `  recipients: "${recipient}\\nage1notakey"\n  identity: "AGE-SECRET-KEY-1SECRETSECRET"`);
  const ctx = await loadContext({ files: [bad] });
  await assert.rejects(clusterObjectStore(ctx, findCluster(ctx.manifests)), (err: Error) => {
    assert.match(err.message, /Cluster "pg" metadata\.annotations\["pgark\.io\/encryption"\]: Secret "age-keys": age recipient #2 is not an age1/);
    assert.equal(err.message.includes('SECRETSECRET'), false);
    return true;
  });
  const none = manifest('none.yaml', '  annotations: {pgark.io/encryption: age-keys}', '  other: x');
  const ctx2 = await loadContext({ files: [none] });
  await assert.rejects(clusterObjectStore(ctx2, findCluster(ctx2.manifests)), /Secret "age-keys" has none of the keys recipients, identity, passphrase/);
});

test('key files for logical dumps: age -R / age-keygen formats; a missing file is named', async () => {
  const r = join(dir.path, 'recipients.txt');
  writeFileSync(r, `# team key\n${recipient}\n`);
  assert.deepEqual(await ageKeysFromFiles({ recipients: r, identity: join(dir.path, 'k') }, '--age-recipients'), { recipients: [recipient], identities: [identity], passphrase: undefined });
  await assert.rejects(ageKeysFromFiles({ identity: join(dir.path, 'nope') }, 'AGE_IDENTITY_FILE'), /AGE_IDENTITY_FILE: cannot read the age identity file .*nope: ENOENT/);
});
