/**
 * Client-side age encryption end to end, on s3rver and Azurite with a real PostgreSQL 15: a base
 * backup, WAL archived under pgbench and a logical dump leave nothing readable in the bucket (raw or
 * after a decompression attempt); the logical restore tool reads the dump with AGE_IDENTITY_FILE; `age -d` gives a WAL segment back byte for byte; restore and wal-restore
 * work with the identity after a key rotation (A, then A+B, then B); a wrong identity is refused
 * with the recipients the objects need. An incremental backup taken with the public key alone
 * encrypts its tars and the restore decrypts the chain; pgark verify and pgark drill read the encrypted store with the
 * Cluster's keys (verify refuses without an identity); the barman-cloud-restore drop-in refuses it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseAllDocuments, stringify } from 'yaml';
import { openObjectStore } from '../../src/storage/open.js';
import { startPostgres } from '../harness/postgres.js';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { pgark, run, walArchiveCommand } from './helpers.js';
import { archiveCurrentWal, backupCluster, recoveryManifest, restore } from '../recovery/helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const keys = scratchDir('age-keys');
cleanup.push(() => keys.cleanup());
function keygen(name: string): { identity: string; recipient: string; file: string } {
  const file = join(keys.path, name);
  execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
  chmodSync(file, 0o644);
  const identity = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  return { identity, recipient: execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim(), file };
}
const A = keygen('a.key');
const B = keygen('b.key');
const SECRETS = ['Zebra-Quokka-7731-left', 'mauve.cartographer@example.invalid', 'PGARK-CANARY-0x5eed'];

/** The manifest with the Cluster annotated and an age Secret added (values are the keys' text). */
function withEncryption(manifest: string, secret: Record<string, string>): string {
  const docs = parseAllDocuments(manifest).map((d) => d.toJS());
  for (const d of docs) if (d.kind === 'Cluster') d.metadata.annotations = { ...d.metadata.annotations, 'pgark.io/encryption': 'pgark-age' };
  docs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pgark-age' }, stringData: secret });
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

async function rawObjects(store: TestStore): Promise<{ key: string; body: Buffer }[]> {
  const os = await openObjectStore(store.resolved());
  try {
    const out = [];
    for await (const e of os.list('')) if (e.object) out.push({ key: e.object.key, body: await os.getBuffer(e.object.key) });
    return out;
  } finally {
    await os.close();
  }
}

for (const kind of ['s3', 'azure-key'] as StoreKind[]) {
  test(`${kind}: encrypted backup and WAL are unreadable in the bucket, restorable after rotation with the identities`, async () => {
    const store = await startStore(kind);
    cleanup.push(() => store.stop());
    const pg = await startPostgres({ noStart: true });
    cleanup.push(() => pg.destroy());
    const manifest = join(pg.baseDir, 'cluster.yaml');
    const base = store.manifest({ clusterName: 'origin', objectStore: { data: { compression: 'gzip' } } });
    const writeManifest = (secret: Record<string, string>) => {
      writeFileSync(manifest, withEncryption(base, secret));
      chmodSync(manifest, 0o644);
    };
    // Key A only: the archiving side holds the public key and, to check re-archived names, the identity.
    writeManifest({ recipients: `${A.recipient}\n`, identity: `${A.identity}\n` });
    pg.configure({ archive_mode: 'on', archive_command: walArchiveCommand(manifest) });
    await pg.start();
    await pg.query('CREATE TABLE canary (id serial primary key, secret text)');
    await pg.query('INSERT INTO canary (secret) SELECT $1 FROM generate_series(1, 200)', [SECRETS[0]]);
    execFileSync(join(pg.bin.binDir, 'pgbench'), ['-i', '-s', '2', '-q'], { env: { ...process.env, ...pg.env }, stdio: 'ignore' });
    execFileSync(join(pg.bin.binDir, 'pgbench'), ['-t', '300', '-c', '2'], { env: { ...process.env, ...pg.env }, stdio: 'ignore' });
    await backupCluster(manifest, pg.pgdata, pg.env);
    const [{ name: switched }] = await pg.query<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS name');
    await archiveCurrentWal(pg);
    const original = readFileSync(join(pg.pgdata, 'pg_wal', switched));

    // Rotation: new objects for A and B, then for B only.
    writeManifest({ recipients: `${A.recipient}\n${B.recipient}\n`, identity: `${A.identity}\n${B.identity}\n` });
    await pg.query('INSERT INTO canary (secret) SELECT $1 FROM generate_series(1, 200)', [SECRETS[1]]);
    await archiveCurrentWal(pg);
    writeManifest({ recipients: `${B.recipient}\n`, identity: `${B.identity}\n` });
    await pg.query('INSERT INTO canary (secret) SELECT $1 FROM generate_series(1, 200)', [SECRETS[2]]);
    execFileSync(join(pg.bin.binDir, 'pgbench'), ['-t', '100', '-c', '2'], { env: { ...process.env, ...pg.env }, stdio: 'ignore' });
    // An incremental for B on top of the full backup for A, taken with the public key alone: its tars are encrypted too.
    writeManifest({ recipients: `${B.recipient}\n` });
    await backupCluster(manifest, pg.pgdata, pg.env, ['--type', 'incremental']);
    await archiveCurrentWal(pg);

    // A logical dump into the same store folder, encrypted for B; the restore tool reads it with B's identity file.
    const prefix = store.destinationPath.slice(store.destinationPath.lastIndexOf('/') + 1);
    const recipientsFile = join(keys.path, `${kind}-recipients`);
    writeFileSync(recipientsFile, `# rotation: B only\n${B.recipient}\n`);
    const location: Record<string, string> =
      kind === 's3'
        ? { LOGICAL_BACKUP_PROVIDER: 's3', LOGICAL_BACKUP_S3_BUCKET: store.s3rver!.bucket, LOGICAL_BACKUP_S3_ENDPOINT: store.s3rver!.endpoint, LOGICAL_BACKUP_S3_REGION: store.s3rver!.region, AWS_ACCESS_KEY_ID: store.s3rver!.accessKeyId, AWS_SECRET_ACCESS_KEY: store.s3rver!.secretAccessKey }
        : { LOGICAL_BACKUP_PROVIDER: 'az', LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_NAME: store.azurite!.account, LOGICAL_BACKUP_AZURE_STORAGE_CONTAINER: store.azurite!.container, LOGICAL_BACKUP_AZURE_STORAGE_ACCOUNT_KEY: store.azurite!.accountKey, LOGICAL_BACKUP_AZURE_STORAGE_ENDPOINT: store.azurite!.blobEndpoint };
    const dump = await pgark(['logical', 'backup', '--database', 'postgres', '--age-recipients', recipientsFile], { SCOPE: 'origin', LOGICAL_BACKUP_S3_BUCKET_PREFIX: prefix, ...location, ...pg.env, PGUSER: 'postgres' });
    assert.equal(dump.code, 0, dump.stderr);
    const dumpKey = (await rawObjects(store)).map((o) => o.key).find((k) => /^origin\/logical_backups\/\d{8}T\d{6}Z\/postgres\.sql\.gz\.age$/.test(k));
    assert.ok(dumpKey, 'the dump is stored as <db>.sql.gz.age');
    const restoreEnv = {
      PATH: process.env.PATH,
      RESTORE_MODE: 'non-interactive',
      DB_NAME: 'from_dump',
      DB_USER: 'postgres',
      DB_PASS: '',
      DB_HOST: pg.host,
      DB_PORT: String(pg.port),
      ...(kind === 's3'
        ? { STORAGE_PROVIDER: 's3', LOGICAL_BACKUP_S3_BUCKET: location.LOGICAL_BACKUP_S3_BUCKET, LOGICAL_BACKUP_S3_ENDPOINT: location.LOGICAL_BACKUP_S3_ENDPOINT, LOGICAL_BACKUP_S3_REGION: location.LOGICAL_BACKUP_S3_REGION, AWS_ACCESS_KEY_ID: location.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: location.AWS_SECRET_ACCESS_KEY, BACKUP_FILE_PATH: `${prefix}/${dumpKey}` }
        : { STORAGE_PROVIDER: 'azure', AZURE_STORAGE_ACCOUNT_NAME: store.azurite!.account, AZURE_STORAGE_ACCOUNT_KEY: store.azurite!.accountKey, AZURE_STORAGE_CONTAINER_NAME: store.azurite!.container, AZURE_STORAGE_ENDPOINT: store.azurite!.blobEndpoint, AZURE_STORAGE_BACKUP_PATH: `${prefix}/${dumpKey}` }),
    } as Record<string, string>;
    const noKey = await pgark(['logical', 'restore'], restoreEnv);
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.stderr, /is age-encrypted, and no identity to decrypt it is configured[\s\S]*AGE_IDENTITY_FILE/);
    assert.deepEqual(await pg.query("SELECT 1 FROM pg_database WHERE datname = 'from_dump'"), [], 'nothing created without the key');
    const restored = await pgark(['logical', 'restore'], { ...restoreEnv, AGE_IDENTITY_FILE: B.file });
    assert.equal(restored.code, 0, restored.stderr);
    const [{ n }] = await pg.query<{ n: string }>('SELECT count(*) AS n FROM canary', [], 'from_dump');
    assert.equal(Number(n), 600);
    await pg.stop();

    const objects = await rawObjects(store);
    const wals = objects.filter((o) => /\/wals\/[0-9A-F]{16}\/[0-9A-F]{24}\.age$/.test(o.key));
    assert.ok(wals.length >= 3, `encrypted segments: ${wals.map((o) => o.key).join(', ')}`);
    assert.ok(objects.some((o) => /\/base\/\d{8}T\d{6}\/data\.tar\.gz\.age$/.test(o.key)));
    assert.ok(objects.some((o) => /\/pgark-incremental\/\d{8}T\d{6}\/data\.tar\.gz\.age$/.test(o.key)));
    assert.equal(objects.filter((o) => o.key.endsWith('/pgark-files.json')).length, 2, 'a file map per backup, readable without the identity');
    for (const o of objects) {
      // backup.info, file maps and the dumps' sidecars stay readable: they hold catalog facts, no data (docs/backups.md).
      if (!/\/(backup\.info|pgark-files\.json)$|\.meta\.json$/.test(o.key)) assert.match(o.key, /\.age$/, `${o.key} is stored in the clear`);
      let inflated: Buffer | undefined;
      try {
        inflated = gunzipSync(o.body);
      } catch {
        inflated = undefined;
      }
      for (const s of SECRETS) {
        assert.equal(o.body.includes(s), false, `${o.key} contains ${s}`);
        assert.equal(inflated?.includes(s) ?? false, false, `${o.key} decompressed contains ${s}`);
      }
    }
    // backup.info stays readable without the key, and carries no recipients' data.
    const info = objects.find((o) => o.key.endsWith('/backup.info'))!.body.toString('utf8');
    assert.match(info, /status=DONE/);

    // The catalog needs no key: barman-cloud-backup-list 3.4 and pgark backup list read the store.
    const theirs = await run('barman-cloud-backup-list', [...store.barman!.args, '--format', 'json', store.destinationPath, 'origin'], store.barman!.env);
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.deepEqual(JSON.parse(theirs.stdout).backups_list.map((b: { status: string }) => b.status), ['DONE']);
    const ours = await pgark(['backup', 'list', '-f', manifest, '--json']);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(JSON.parse(ours.stdout).backups_list.length, 1);

    // The standard age tool reads a segment, byte for byte, without pgark.
    const seg = objects.find((o) => o.key.endsWith(`/${switched}.age`))!;
    const segFile = join(keys.path, `${kind}-${switched}.age`);
    writeFileSync(segFile, seg.body);
    assert.ok(execFileSync('age', ['-d', '-i', A.file, segFile], { maxBuffer: 64 << 20 }).equals(original));

    // Restore (the incremental for B over the full backup for A, WAL for A, A+B, B) with both identities listed: all rows are back.
    const recoverySecret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pgark-age' }, stringData: { identity: `${A.identity}\n${B.identity}\n` } };
    const annotations = { 'pgark.io/encryption': 'pgark-age' };
    const good = await restore(`${recoveryManifest(store, { name: 'recovered', sourceName: 'origin', annotations, noBackup: true })}---\n${stringify(recoverySecret)}`, ['--start']);
    cleanup.push(() => good.recovered.destroy());
    assert.equal(good.result.code, 0, good.result.stderr);
    const rows = await good.recovered.query<{ secret: string; n: string }>('SELECT secret, count(*) AS n FROM canary GROUP BY secret ORDER BY secret');
    assert.deepEqual(rows.map((r) => [r.secret, Number(r.n)]), [...SECRETS].sort().map((s) => [s, 200]));
    for (const id of [A.identity, B.identity]) assert.equal((good.result.stdout + good.result.stderr).includes(id), false, 'an identity was printed');

    // Identity B alone cannot read the base backup, which was written for A only.
    const wrongSecret = { ...recoverySecret, stringData: { identity: `${B.identity}\n` } };
    const wrong = await restore(`${recoveryManifest(store, { name: 'wrong', sourceName: 'origin', annotations, noBackup: true })}---\n${stringify(wrongSecret)}`);
    cleanup.push(() => wrong.recovered.destroy());
    assert.notEqual(wrong.result.code, 0);
    assert.match(wrong.result.stderr, new RegExp(`is encrypted for ${A.recipient}; your identities: ${B.recipient}`));
    assert.equal((wrong.result.stdout + wrong.result.stderr).includes(B.identity), false, 'the identity was printed');

    // verify reads every tar and segment through the keys; without an identity it refuses before reading.
    writeManifest({ recipients: `${B.recipient}\n` });
    const keyless = await pgark(['verify', '-f', manifest, '--wal', '--json']);
    assert.equal(keyless.code, 2, keyless.stderr);
    assert.match(keyless.stderr, /data\.tar\.gz\.age is age-encrypted, and no identity to decrypt it is configured/);
    writeManifest({ recipients: `${B.recipient}\n`, identity: `${A.identity}\n${B.identity}\n` });
    const verified = await pgark(['verify', '-f', manifest, '--wal', '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const result = JSON.parse(verified.stdout);
    assert.equal(result.ok, true, JSON.stringify(result.problems));
    assert.ok(result.backups[0].objects.every((o: { key: string; entries: number }) => o.key.endsWith('.age') && o.entries > 0), JSON.stringify(result.backups[0].objects));
    assert.ok(result.wal.segmentsRead >= 3, JSON.stringify(result.wal));

    // A restore drill of the encrypted store (the incremental chain, then WAL) passes with the source's keys.
    const drillScratch = scratchDir(`${kind}-drill`);
    cleanup.push(() => drillScratch.cleanup());
    const drilled = await pgark(['drill', '-f', manifest, '--scratch', drillScratch.path, '--target', 'latest', '--json']);
    assert.equal(drilled.code, 0, drilled.stdout + drilled.stderr);
    const report = JSON.parse(drilled.stdout);
    assert.equal(report.ok, true, JSON.stringify(report.failure));
    assert.ok(report.bytes.downloaded > 0 && report.bytes.walSegmentsReplayed >= 1, JSON.stringify(report.bytes));

    // barman-cloud-restore (pgark's drop-in) has no keys: it refuses the encrypted backup and writes nothing.
    const dest = join(drillScratch.path, 'barman-dest');
    const dropIn = await run(join(process.cwd(), 'bin/barman-cloud/barman-cloud-restore'), [...store.barman!.args, store.destinationPath, 'origin', 'latest', dest], store.barman!.env);
    assert.equal(dropIn.code, 1, dropIn.stderr);
    assert.match(dropIn.stderr, /data\.tar\.gz\.age is age-encrypted, and no identity[\s\S]*pgark restore/);
    assert.equal(existsSync(dest), false, 'the drop-in created the destination');
  });
}
