/**
 * No value read from a Secret reaches any output: distinctive values are seeded into every
 * secret-bearing field (and into URLs with embedded credentials), every command that reads them
 * runs against real s3rver / Azurite with wrong credentials or malformed Secrets, and stdout,
 * stderr, --json and the agent's endpoints and log are scanned for each value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startS3rver } from '../harness/s3rver.js';
import { startAzurite } from '../harness/azurite.js';
import { freePort } from '../harness/ports.js';
import { scratchDir } from '../harness/tmp.js';
import { clusterText, s3StoreText, secretText, yamlDocuments } from '../harness/manifests.js';
import { pgark, type RunResult } from '../backup/helpers.js';
import { startAgent, waitFor, getText } from '../agent/helpers.js';

const NO_KUBE = { HOME: '/nonexistent-home-for-tests' };

/** Fails naming the command and the leaked value; each value is also looked for base64-encoded. */
function assertNoLeak(what: string, text: string, secrets: readonly string[]): void {
  for (const s of secrets) {
    for (const form of [s, Buffer.from(s).toString('base64'), encodeURIComponent(s)]) {
      assert.ok(!text.includes(form), `${what} shows secret value ${JSON.stringify(s)}:\n${text}`);
    }
  }
}

async function runAll(label: string, commands: string[][], env: Record<string, string>, secrets: readonly string[]): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const args of commands) {
    const r = await pgark(args, { ...NO_KUBE, ...env });
    assertNoLeak(`${label}: pgark ${args.join(' ')}`, r.stdout + r.stderr, secrets);
    results.push(r);
  }
  return results;
}

/** Every command that reads a Cluster's object-store secrets, plain and --json. */
function storeCommands(file: string): string[][] {
  const base = [
    ['check', '-f', file],
    ['backup', 'list', '-f', file],
    ['backup', 'show', 'latest', '-f', file],
    ['wal-list', '-f', file],
    ['retention', '--dry-run', '--policy', '7d', '-f', file],
  ];
  return [...base, ...base.map((c) => [...c, '--json'])];
}

test('malformed Secret values (number, bool, null, mapping, list, bad base64, Markdown, placeholder) are never echoed', async () => {
  const dir = scratchDir('leaks');
  const secrets = ['987654321', 'NESTED-SECRET-1', 'LIST-SECRET-2', 'DATA-SECRET-3', 'MD-SECRET-4', 'MD-SECRET-5', 'PLACEHOLDER_SECRET_6', '31415926'];
  try {
    const file = join(dir.path, 'm.yaml');
    writeFileSync(
      file,
      yamlDocuments(
        clusterText({ store: s3StoreText({ keys: ['number', 'nested'] }) }),
        secretText(`stringData:
  number: 987654321
  float: 31415926.0
  flag: true
  empty: null
  nested: {inner: NESTED-SECRET-1}
  list: [LIST-SECRET-2]
  md: "[MD-SECRET-4](https://MD-SECRET-5)"
  key: $PLACEHOLDER_SECRET_6
data:
  broken: "not base64 DATA-SECRET-3 !!"
`),
      ),
    );
    const results = await runAll('malformed', [...storeCommands(file), ['restore', '--dry-run', '-f', file], ['restore', '--dry-run', '--json', '-f', file]], {}, secrets);
    for (const r of results) assert.equal(r.code, 2, r.stderr);
    const check = results[0].stderr;
    assert.match(check, /stringData\.number: expected string, got a number/);
    assert.match(check, /stringData\.flag: expected string, got a boolean/);
    assert.match(check, /put the value in double quotes/);
    assert.match(check, /data\.broken: value is not valid base64/);
    assert.doesNotMatch(check, /boolean true/);
  } finally {
    dir.cleanup();
  }
});

test('a YAML syntax error inside a Secret does not quote the line', async () => {
  const dir = scratchDir('leaks');
  try {
    const file = join(dir.path, 'm.yaml');
    writeFileSync(file, secretText('stringData:\n  password: [YAML-SECRET-7](http://YAML-SECRET-8) trailing\n'));
    const results = await runAll('yaml', [['check', '-f', file], ['check', '--json', '-f', file]], {}, ['YAML-SECRET-7', 'YAML-SECRET-8']);
    for (const r of results) assert.equal(r.code, 2, r.stderr);
    assert.match(results[0].stderr, /m\.yaml:5:\d+: .*invalid YAML/);
  } finally {
    dir.cleanup();
  }
});

test('wrong credentials in every secret-bearing field, and URLs with credentials, against s3rver and Azurite', { timeout: 600_000 }, async () => {
  const dir = scratchDir('leaks');
  const s3 = await startS3rver();
  const az = await startAzurite();
  const s3Secrets = ['S3-ID-A1B2', 'S3-KEY-C3D4', 'S3-TOKEN-E5F6', 'S3-REGION-G7', 'CA-SECRET-PEM-H8', 'URLUSER-I9', 'URLPASS-J0'];
  const azSecrets = ['AZ-CONN-KEY-K1', 'AZACCOUNTL2', 'AZ-KEY-M3', 'AZ-SAS-N4', 'GCS-CREDS-O5', 'DESTUSER-P6', 'DESTPASS-Q7', 'SASQUERY-R8'];
  const all = [...s3Secrets, ...azSecrets];
  try {
    const [host, port] = [s3.endpoint.replace(/^http:\/\//, '').split(':')[0], s3.port];
    const secretDoc = secretText(`stringData:
  id: S3-ID-A1B2
  key: S3-KEY-C3D4
  token: S3-TOKEN-E5F6
  region: S3-REGION-G7
  ca: CA-SECRET-PEM-H8
  conn: "DefaultEndpointsProtocol=http;AccountName=${az.account};AccountKey=AZ-CONN-KEY-K1;BlobEndpoint=${az.blobEndpoint};"
  account: AZACCOUNTL2
  azkey: ${Buffer.from('AZ-KEY-M3').toString('base64')}
  sas: sv=2020-08-04&sig=AZ-SAS-N4
data:
  gcs: ${Buffer.from('{"private_key": "GCS-CREDS-O5"}').toString('base64')}
`);
    const cluster = (store: string) => yamlDocuments(clusterText({ store }), secretDoc);
    const s3Store = `      destinationPath: s3://${s3.bucket}/pg
      endpointURL: http://URLUSER-I9:URLPASS-J0@${host}:${port}
      endpointCA: {name: creds, key: ca}
      s3Credentials:
        accessKeyId: {name: creds, key: id}
        secretAccessKey: {name: creds, key: key}
        sessionToken: {name: creds, key: token}
        region: {name: creds, key: region}
`;
    const s3File = join(dir.path, 's3.yaml');
    writeFileSync(s3File, cluster(s3Store));
    // Recovery reads the same secrets through externalClusters.
    const recoveryFile = join(dir.path, 'recovery.yaml');
    writeFileSync(
      recoveryFile,
      yamlDocuments(
        `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: restored}
spec:
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    barmanObjectStore:
${s3Store}`,
        secretDoc,
      ),
    );
    const azureForms: Record<string, string> = {
      conn: `        connectionString: {name: creds, key: conn}\n`,
      key: `        storageAccount: {name: creds, key: account}\n        storageKey: {name: creds, key: azkey}\n`,
      sas: `        storageAccount: {name: creds, key: account}\n        storageSasToken: {name: creds, key: sas}\n`,
    };
    const files = [s3File];
    for (const [form, creds] of Object.entries(azureForms)) {
      const f = join(dir.path, `azure-${form}.yaml`);
      const destination = `http://DESTUSER-P6:DESTPASS-Q7@127.0.0.1:${az.port}/${az.account}/${az.container}/pg?sig=SASQUERY-R8`;
      writeFileSync(f, cluster(`      destinationPath: ${destination}\n      azureCredentials:\n${creds}`));
      files.push(f);
    }
    const gcsFile = join(dir.path, 'gcs.yaml');
    writeFileSync(gcsFile, cluster(`      destinationPath: gs://bucket/pg\n      googleCredentials:\n        applicationCredentials: {name: creds, key: gcs}\n`));
    files.push(gcsFile);

    for (const f of files) {
      const results = await runAll(f, storeCommands(f), {}, all);
      assert.ok(results.every((r) => r.code !== 0), `${f}: wrong credentials must fail every command`);
    }
    // --secrets-dir and Kubernetes-style mounts are other sources of the same values: same rule.
    const recovery = await runAll('recovery', [['restore', '--dry-run', '-f', recoveryFile], ['restore', '--dry-run', '--json', '-f', recoveryFile], ['check', '-f', recoveryFile]], {}, all);
    assert.ok(recovery.every((r) => r.code !== 0));

    // Logical backups take their secrets from the environment.
    const logicalS3 = { SCOPE: 'pg', LOGICAL_BACKUP_S3_BUCKET: s3.bucket, LOGICAL_BACKUP_S3_ENDPOINT: `http://URLUSER-I9:URLPASS-J0@${host}:${port}`, AWS_ACCESS_KEY_ID: 'S3-ID-A1B2', AWS_SECRET_ACCESS_KEY: 'S3-KEY-C3D4' };
    const logicalAz = {
      SCOPE: 'pg',
      LOGICAL_BACKUP_PROVIDER: 'az',
      LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME: az.account,
      LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER: az.container,
      LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY: Buffer.from('AZ-KEY-M3').toString('base64'),
      LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT: az.blobEndpoint,
    };
    const logicalConn = { SCOPE: 'pg', LOGICAL_BACKUP_PROVIDER: 'az', LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER: az.container, AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${az.account};AccountKey=AZ-CONN-KEY-K1;BlobEndpoint=${az.blobEndpoint};` };
    for (const [label, env] of Object.entries({ logicalS3, logicalAz, logicalConn })) {
      const results = await runAll(label, [['logical', 'list'], ['logical', 'list', '--json']], env, all);
      assert.ok(results.every((r) => r.code !== 0), `${label}: ${results.map((r) => r.stderr).join('\n')}`);
    }

    // The agent: log, /metrics, /status, /healthz, /readyz.
    const stateDir = join(dir.path, 'state');
    for (const f of [s3File, files[1]]) {
      const agent = startAgent(['-f', f, '--state-dir', stateDir, '--refresh-interval', '1s'], { port: await freePort(), env: NO_KUBE });
      try {
        const ready = await waitFor('the agent to report its store', async () => {
          const r = await getText(agent.url, '/readyz');
          return r.status === 503 && /store|catalog|credentials|failed/i.test(r.body) ? r : undefined;
        }, 120_000, agent);
        const bodies = [ready.body];
        for (const path of ['/metrics', '/status', '/healthz']) bodies.push((await getText(agent.url, path)).body);
        const status = JSON.parse(bodies[2]) as { clusters: { destination: string }[] };
        assert.ok(status.clusters.length > 0 && status.clusters.every((c) => !c.destination.includes('@')), bodies[2]);
        assertNoLeak(`agent ${f}`, [...bodies, agent.stderr()].join('\n'), all);
      } finally {
        agent.proc.kill('SIGTERM');
        await agent.exited;
      }
    }
  } finally {
    await az.stop();
    await s3.stop();
    dir.cleanup();
  }
});
