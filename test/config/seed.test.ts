/**
 * The seed document's manifests (test/fixtures/manifests/seed): the corrected copies load with
 * their values and defaults; each verbatim snippet fails with the error its mistake deserves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadManifests } from '../../src/config/index.js';
import { ConfigError, type ManifestIssue } from '../../src/util/errors.js';

const SEED = 'test/fixtures/manifests/seed';

async function issuesOf(file: string): Promise<ManifestIssue[]> {
  try {
    await loadManifests([file]);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues;
  }
  return assert.fail(`${file} loaded without error`);
}

function find(issues: ManifestIssue[], path: string, fragment: string): ManifestIssue {
  const i = issues.find((x) => x.path === path && x.message.includes(fragment));
  assert.ok(i, `no issue at ${path} with "${fragment}" in ${JSON.stringify(issues, null, 1)}`);
  return i;
}

const load = (name: string) => loadManifests([`${SEED}/${name}`]);

test('the corrected seed manifests load, with their values and defaults', async () => {
  const s3 = (await load('s3-backup.yaml')).clusters[0];
  assert.equal(s3.spec.backup?.retentionPolicy, '30d');
  assert.equal(s3.spec.backup?.barmanObjectStore?.wal?.compression, 'gzip');
  assert.deepEqual(s3.spec.backup?.barmanObjectStore?.s3Credentials?.accessKeyId, { name: 's3-creds', key: 'accessKeyId' });
  assert.deepEqual(s3.ignoredFields, ['spec.instances']);

  const recoverySet = await load('recovery-s3.yaml');
  const recovery = recoverySet.clusters[0];
  assert.equal(recovery.metadata.name, 'oncall-pgsql-v2');
  assert.equal(recovery.spec.bootstrap?.recovery?.source, 'oncall-pgsql-old');
  assert.equal(recovery.spec.externalClusters?.[0].barmanObjectStore?.wal?.maxParallel, 8);
  assert.equal(recovery.spec.backup?.barmanObjectStore?.serverName, 'oncall-pgsql-v2');
  assert.deepEqual(recovery.ignoredFields, ['spec.imageName', 'spec.instances']);
  assert.equal(recovery.origin.positionOf('spec.backup.barmanObjectStore.serverName')?.line, 40);
  assert.equal(recoverySet.secrets[0].values.ACCESS_KEY_ID.toString(), 'S3RVER');

  const sched = (await load('scheduled-backup.yaml')).scheduledBackups[0];
  assert.equal(sched.spec.schedule, '0 0 0 * * *');
  assert.equal(sched.spec.backupOwnerReference, 'none');
  assert.equal(sched.spec.method, 'barmanObjectStore');
  assert.equal(sched.spec.immediate, true);
  assert.equal(sched.spec.suspend, false);

  const iam = (await load('s3-iam-role.yaml')).clusters[0];
  assert.deepEqual(iam.ignoredFields, ['spec.serviceAccountTemplate']);
  assert.equal(iam.spec.backup?.barmanObjectStore?.s3Credentials?.inheritFromIAMRole, true);

  const azure = await load('azure-backup.yaml');
  assert.match(azure.secrets[0].values.AZURE_CONNECTION_STRING.toString(), /^DefaultEndpointsProtocol=https;AccountName=grafanabackup;/);
  assert.equal((await load('recovery-azure.yaml')).clusters[0].spec.externalClusters?.[0].barmanObjectStore?.wal?.maxParallel, 8);
  assert.equal((await load('recovery-from-backup.yaml')).clusters[0].spec.bootstrap?.recovery?.backup?.name, 'grafana-pg-backup-20240501000000');
});

test('-f DIR reads every *.yaml in it, and the same Cluster name in two files is an error', async () => {
  const err = await loadManifests([SEED]).then(
    () => assert.fail('loaded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError);
  const dup = err.issues.find((i) => i.message.startsWith('duplicate Cluster "grafana-pg"'));
  assert.ok(dup, err.message);
  assert.match(dup.message, /also defined at test\/fixtures\/manifests\/seed\/azure-backup\.yaml:3/);
  assert.equal(dup.position?.file, `${SEED}/recovery-from-backup.yaml`.replace('recovery-from-backup', 's3-backup'));
});

test('seed: Markdown link syntax in endpointURL is a YAML error that says to write the bare URL', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/recovery-s3.yaml`);
  assert.equal(issues.length, 2);
  const ext = find(issues, 'spec.externalClusters[0].barmanObjectStore.endpointURL', 'invalid YAML');
  assert.equal(ext.position?.line, 24);
  assert.equal(ext.hint, 'this looks like a Markdown link; write the bare URL: https://s3.your-provider.com');
  const own = find(issues, 'spec.backup.barmanObjectStore.endpointURL', 'invalid YAML');
  assert.equal(own.position?.line, 38);
  assert.match(own.hint ?? '', /looks like a Markdown link; write the bare URL/);
});

test('seed: the Azure example with an s3:// destination and a connection string plus keys', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/azure-backup.yaml`);
  const scheme = find(issues, 'spec.backup.barmanObjectStore.destinationPath', 'is an s3:// URL but the credentials are azureCredentials');
  assert.equal(scheme.position?.line, 11);
  assert.match(scheme.hint ?? '', /https:\/\/ACCOUNT\.blob\.core\.windows\.net\/CONTAINER\/PATH/);
  const cs = find(issues, 'spec.backup.barmanObjectStore.azureCredentials.connectionString', 'cannot be combined with storageAccount, storageKey, storageSasToken');
  assert.equal(cs.position?.line, 15);
  assert.match(cs.hint ?? '', /keep connectionString alone/);
});

test('seed: the IAM role example has no credentials provider', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/s3-iam-role.yaml`);
  const i = find(issues, 'spec.backup.barmanObjectStore', 'One and only one of azureCredentials, s3Credentials and googleCredentials are required');
  assert.match(i.hint ?? '', /inheritFromIAMRole: true/);
});

test('seed: the $backup-name placeholder is reported as a placeholder', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/recovery-from-backup.yaml`);
  const i = find(issues, 'spec.bootstrap.recovery.backup.name', 'must be a Kubernetes name');
  assert.equal(i.position?.line, 10);
  assert.match(i.hint ?? '', /"\$backup-name" looks like a placeholder/);
});

test('seed: the Azure recovery snippet as written has inconsistent indentation', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/recovery-azure.yaml`);
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, 'externalClusters');
  assert.deepEqual([issues[0].position?.line, issues[0].position?.column], [10, 5]);
  assert.match(issues[0].message, /invalid YAML: All mapping items must start at the same column/);
  assert.match(issues[0].hint ?? '', /align it with its sibling keys/);
});

test('seed: the Azure recovery snippet, aligned, shows the store fields outside barmanObjectStore and wal inside azureCredentials', async () => {
  const issues = await issuesOf(`${SEED}/verbatim/recovery-azure-aligned.yaml`);
  const empty = find(issues, 'spec.externalClusters[0].barmanObjectStore', 'is empty');
  assert.match(empty.hint ?? '', /indented further/);
  for (const [field, line] of [['destinationPath', 13], ['endpointURL', 14], ['azureCredentials', 15]] as const) {
    const i = find(issues, `spec.externalClusters[0].${field}`, `unknown field "${field}"`);
    assert.equal(i.position?.line, line);
    assert.match(i.hint ?? '', /belongs inside "barmanObjectStore"/);
  }
  const placeholder = find(issues, 'spec.externalClusters[0].destinationPath', '"your s3 backup path" is not an object-store URL');
  assert.match(placeholder.hint ?? '', /placeholder text/);
  find(issues, 'spec.externalClusters[0].endpointURL', '"your s3 endpoint" is not an http(s) URL');
  const cs = find(issues, 'spec.externalClusters[0].azureCredentials.connectionString', 'cannot be combined with storageAccount, storageKey, storageSasToken');
  assert.equal(cs.position?.line, 17);
  const wal = find(issues, 'spec.externalClusters[0].azureCredentials.wal', 'unknown field "wal"');
  assert.equal(wal.position?.line, 28);
  assert.match(wal.hint ?? '', /belongs one level up, next to "azureCredentials"/);
});
