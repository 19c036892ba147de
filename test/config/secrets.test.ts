/**
 * SecretKeySelector resolution: Secret documents from -f, --secrets-dir, and the Kubernetes API.
 * No Kubernetes runs here, so the API is test/harness/kube-api.ts, which plays the API server's
 * documented contract (paths, V1Secret JSON, bearer tokens), reached through a kubeconfig.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterObjectStore, loadContext } from '../../src/config/index.js';
import { UserError } from '../../src/util/errors.js';
import { scratchDir } from '../harness/tmp.js';
import { secret, startKubeApi } from '../harness/kube-api.js';
import { clusterText, secretText, yamlDocuments } from '../harness/manifests.js';

const NO_KUBE = { HOME: '/nonexistent-home-for-tests' };

function writeManifest(dir: string, text: string): string {
  const file = join(dir, 'm.yaml');
  writeFileSync(file, text);
  return file;
}

test('Secret documents: data is base64-decoded, stringData wins, values never reach credentialSource', async () => {
  const dir = scratchDir('secrets');
  try {
    const file = writeManifest(
      dir.path,
      yamlDocuments(
        clusterText(),
        secretText(`data:
  ACCESS_KEY_ID: ${Buffer.from('AKIA-from-data').toString('base64')}
  SECRET_ACCESS_KEY: ${Buffer.from('overridden').toString('base64')}
stringData:
  SECRET_ACCESS_KEY: very-secret-value
`),
      ),
    );
    const ctx = await loadContext({ files: [file], env: NO_KUBE });
    const r = await clusterObjectStore(ctx, ctx.manifests.clusters[0]);
    assert.equal(r.s3?.accessKeyId, 'AKIA-from-data');
    assert.equal(r.s3?.secretAccessKey, 'very-secret-value');
    assert.equal(r.serverName, 'pg');
    assert.equal(r.credentialSource, `s3Credentials: accessKeyId, secretAccessKey from Secret creds (${file})`);
    assert.ok(!JSON.stringify(r.credentialSource).includes('very-secret-value'));
  } finally {
    dir.cleanup();
  }
});

test('--secrets-dir DIR/NAME/KEY is read byte for byte; -f Secrets come first', async () => {
  const dir = scratchDir('secrets');
  try {
    const mount = join(dir.path, 'mount');
    mkdirSync(join(mount, 'creds'), { recursive: true });
    writeFileSync(join(mount, 'creds', 'ACCESS_KEY_ID'), 'id-from-dir');
    writeFileSync(join(mount, 'creds', 'SECRET_ACCESS_KEY'), 'key-from-dir\n');
    const file = writeManifest(dir.path, clusterText());
    const ctx = await loadContext({ files: [file], secretsDir: mount, env: NO_KUBE });
    const r = await clusterObjectStore(ctx, ctx.manifests.clusters[0]);
    assert.equal(r.s3?.accessKeyId, 'id-from-dir');
    assert.equal(r.s3?.secretAccessKey, 'key-from-dir\n', 'the trailing newline is kept, as Kubernetes mounts it');
    assert.equal(r.credentialSource, `s3Credentials: accessKeyId, secretAccessKey from --secrets-dir ${join(mount, 'creds')}`);

    const both = writeManifest(dir.path, yamlDocuments(clusterText(), secretText('stringData: {ACCESS_KEY_ID: id-from-manifest}\n')));
    const ctx2 = await loadContext({ files: [both], secretsDir: mount, env: NO_KUBE });
    const r2 = await clusterObjectStore(ctx2, ctx2.manifests.clusters[0]);
    assert.equal(r2.s3?.accessKeyId, 'id-from-manifest');
    assert.equal(r2.s3?.secretAccessKey, 'key-from-dir\n');
  } finally {
    dir.cleanup();
  }
});

test('a missing secret or key names both and every source tried, and no value', async () => {
  const dir = scratchDir('secrets');
  try {
    const mount = join(dir.path, 'mount');
    mkdirSync(join(mount, 'creds'), { recursive: true });
    writeFileSync(join(mount, 'creds', 'ACCESS_KEY_ID'), 'visible-only-in-files');
    const file = writeManifest(dir.path, clusterText());
    const ctx = await loadContext({ files: [file], secretsDir: mount, env: NO_KUBE });
    const err = await clusterObjectStore(ctx, ctx.manifests.clusters[0]).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UserError);
    assert.equal(err.exitCode, 2);
    // Pointed at the `key:` that asks for it, as other manifest errors are.
    const lines = clusterText().split('\n');
    const line = lines.findIndex((l) => l.includes('key: SECRET_ACCESS_KEY'));
    const column = lines[line].indexOf('key: SECRET_ACCESS_KEY') + 1;
    const where = `${file}:${line + 1}:${column}: spec.backup.barmanObjectStore.s3Credentials.secretAccessKey.key: `;
    assert.ok(err.message.startsWith(where), `${err.message}\ndoes not start with ${where}`);
    assert.match(err.message, /: secret "creds" key "SECRET_ACCESS_KEY" not found; tried: /);
    assert.match(err.message, /no Secret document named "creds" in the -f manifests/);
    assert.match(err.message, /--secrets-dir .*creds has no file "SECRET_ACCESS_KEY" \(keys: ACCESS_KEY_ID\)/);
    assert.match(err.message, /Kubernetes API \(no KUBERNETES_SERVICE_HOST, KUBECONFIG or ~\/\.kube\/config\): not tried/);
    assert.ok(!err.message.includes('visible-only-in-files'));
  } finally {
    dir.cleanup();
  }
});

test('Kubernetes API: namespace from the manifest, else from the kubeconfig context; 404 is a clear miss', async () => {
  const dir = scratchDir('secrets');
  const api = await startKubeApi();
  api.put(secret('creds', { ACCESS_KEY_ID: 'prod-id', SECRET_ACCESS_KEY: 'prod-secret' }, 'prod'));
  api.put(secret('creds', { ACCESS_KEY_ID: 'team-id' }, 'team-a'));
  api.grant('test-token', [{ resource: 'secrets', verbs: ['get'] }]);
  try {
    const env = { KUBECONFIG: api.kubeconfig('test-token', 'team-a'), HOME: '/nonexistent' };
    const prodFile = writeManifest(dir.path, clusterText({ namespace: 'prod' }));
    const ctx = await loadContext({ files: [prodFile], env });
    const r = await clusterObjectStore(ctx, ctx.manifests.clusters[0]);
    assert.equal(r.s3?.accessKeyId, 'prod-id');
    assert.equal(r.s3?.secretAccessKey, 'prod-secret');
    assert.equal(r.credentialSource, 's3Credentials: accessKeyId, secretAccessKey from Kubernetes secret prod/creds');
    assert.ok(api.requests.every((r) => r.path === '/api/v1/namespaces/prod/secrets/creds' && r.authorization === 'Bearer test-token'));

    const plainFile = writeManifest(dir.path, clusterText());
    const ctx2 = await loadContext({ files: [plainFile], env });
    const err = await clusterObjectStore(ctx2, ctx2.manifests.clusters[0]).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UserError);
    assert.match(err.message, /secret "creds" key "SECRET_ACCESS_KEY" not found/);
    assert.match(err.message, /Kubernetes secret team-a\/creds has no key "SECRET_ACCESS_KEY" \(keys: ACCESS_KEY_ID\)/);
    assert.ok(!err.message.includes('team-id'));
    assert.ok(api.requests.some((r) => r.path === '/api/v1/namespaces/team-a/secrets/creds'));

    const missing = writeManifest(dir.path, clusterText({ namespace: 'nowhere' }));
    const ctx3 = await loadContext({ files: [missing], env });
    await assert.rejects(clusterObjectStore(ctx3, ctx3.manifests.clusters[0]), /Kubernetes API \(kubeconfig .*\) has no secret nowhere\/creds/);
  } finally {
    await api.close();
    dir.cleanup();
  }
});
