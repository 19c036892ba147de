/**
 * Plugin-form manifests end to end through the real CLI: the seed's S3 manifests (pointed at
 * s3rver, the recovery's source renamed to the backed-up Cluster) go through `pgark migrate`, and
 * from then on only the migrated files are used: a PostgreSQL 15 archives with `pgark wal-archive`
 * into the ObjectStore, `pgark check` passes, `pgark backup` and `pgark apply` of a method: plugin
 * Backup store base backups there, `pgark restore` recovers a server that starts and has all the
 * data through externalClusters[].plugin, `pgark retention --dry-run` applies the ObjectStore's
 * retentionPolicy, and `pgark agent` runs the seed's ScheduledBackup (now method: plugin) into the
 * ObjectStore. Nothing is mocked: s3rver, PostgreSQL and the CLI are real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { serverIdentity } from '../../src/pg/local-server.js';
import { startS3rver, type S3rver } from '../harness/s3rver.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { scratchDir } from '../harness/tmp.js';
import { freePort } from '../harness/ports.js';
import { getStatus, startAgent, waitFor } from '../agent/helpers.js';
import { PGARK, run } from '../backup/helpers.js';
import { archiveCurrentWal, backupCluster, batches, insertBatch, pgark, restore, type Recovered } from '../recovery/helpers.js';

const SEED = 'test/fixtures/manifests/seed';
let s3: S3rver;
let pg: PgServer;
const work = scratchDir('cli-plugin-form');
const out = join(work.path, 'migrated');
const recovered: Recovered[] = [];

/** The seed file, pointed at s3rver (the seed's S3 secrets already hold s3rver's key pair). */
function seedForS3rver(name: string, replacements: [string, string][]): string {
  let text = readFileSync(join(SEED, name), 'utf8');
  for (const [from, to] of replacements) text = text.replaceAll(from, to);
  const file = join(work.path, name);
  writeFileSync(file, text);
  return file;
}

before(async () => {
  s3 = await startS3rver({ bucket: 'grafana-backup' });
  const inputs = [
    seedForS3rver('s3-backup.yaml', [['https://s3.storage.foo.bar', s3.endpoint]]),
    seedForS3rver('scheduled-backup.yaml', []),
    seedForS3rver('recovery-s3.yaml', [
      ['s3://your-backup-bucket-name', 's3://grafana-backup/backups'],
      ['https://s3.your-provider.com', s3.endpoint],
      ['oncall-pgsql-old', 'grafana-pg'],
    ]),
  ];
  const m = await pgark(['migrate', ...inputs.flatMap((f) => ['-f', f]), '-o', out]);
  assert.equal(m.code, 0, m.stderr);
  // archive_command runs as the server's OS user, which must read the migrated manifests.
  chmodSync(out, 0o755);
  for (const f of readdirSync(out)) chmodSync(join(out, f), 0o644);

  pg = await startPostgres({ noStart: true });
  pg.configure({ archive_mode: 'on', archive_command: `${process.execPath} ${PGARK} wal-archive --no-daemon -f ${join(out, 's3-backup.yaml')} %p` });
  await pg.start();
  await pg.query('CREATE TABLE rows (batch int, id serial primary key, at timestamptz default clock_timestamp())');
  await insertBatch(pg, 1);
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await pg?.destroy();
  await s3?.stop();
  work.cleanup();
});

test('migrate: the in-tree stores became ObjectStores and plugin references', () => {
  const backup = readFileSync(join(out, 's3-backup.yaml'), 'utf8');
  const recovery = readFileSync(join(out, 'recovery-s3.yaml'), 'utf8');
  assert.doesNotMatch(backup + recovery, /barmanObjectStore:/);
  assert.match(backup, /kind: ObjectStore/);
  assert.match(backup, /kind: ObjectStore\n(.*\n)*spec:\n  retentionPolicy: "?30d"?\n/);
  assert.match(recovery, /plugin:\n\s+name: pgark\.io/);
  assert.match(readFileSync(join(out, 'scheduled-backup.yaml'), 'utf8'), /method: plugin/);
});

test('check passes on the migrated Cluster: its ObjectStore written to, PostgreSQL archiving', async () => {
  const r = await pgark(['check', '-f', join(out, 's3-backup.yaml')], pg.env);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /manifests\s+OK\s+valid: 1 Cluster, 1 Secret, 1 ObjectStore/);
  assert.match(r.stdout, /backup store \(ObjectStore grafana-pg-store\): write\+delete\s+OK\s+probe object written and deleted under grafana-pg\//);
});

test('backup, apply of a method: plugin Backup, restore from externalClusters[].plugin, retention --dry-run', async () => {
  const manifest = join(out, 's3-backup.yaml');
  const first = await backupCluster(manifest, pg.pgdata, pg.env);
  assert.match(first, /^\d{8}T\d{6}$/);
  await insertBatch(pg, 2);

  const backupCr = join(work.path, 'backup.yaml');
  writeFileSync(
    backupCr,
    stringify({
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Backup',
      metadata: { name: 'grafana-pg-on-demand' },
      spec: { method: 'plugin', cluster: { name: 'grafana-pg' }, pluginConfiguration: { name: 'pgark.io' } },
    }),
  );
  chmodSync(backupCr, 0o644);
  const who = serverIdentity();
  const applied = await run(process.execPath, [PGARK, 'apply', '-f', backupCr, '-f', manifest, '--json'], { PGARK_LOG_LEVEL: 'warn', ...pg.env }, { uid: who?.uid, gid: who?.gid });
  assert.equal(applied.code, 0, applied.stderr);
  const result = JSON.parse(applied.stdout);
  assert.equal(result.backup_name, 'grafana-pg-on-demand');
  assert.match(result.pgark_destination, /^s3:\/\/grafana-backup\/backups/);
  await insertBatch(pg, 3);
  await archiveCurrentWal(pg);

  const { result: restored, recovered: r } = await restore(readFileSync(join(out, 'recovery-s3.yaml'), 'utf8'), ['--start']);
  recovered.push(r);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stderr, /server "grafana-pg"/);
  assert.deepEqual(await batches(r), [1, 2, 3], 'every batch, the last one from archived WAL');
  const [s] = await r.query<{ ac: string; db: string }>("SELECT current_setting('archive_command') AS ac, (SELECT datname FROM pg_database WHERE datname = 'oncall') AS db");
  assert.match(s.ac, /wal-archive/, 'the recovered Cluster archives into its own ObjectStore');
  assert.equal(s.db, 'oncall');

  const dry = await pgark(['retention', '-f', manifest, '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /Retention of server "grafana-pg" in s3:\/\/grafana-backup\/backups.*: 30d \(RECOVERY WINDOW OF 30 DAYS\)/);
  assert.match(dry.stdout, new RegExp(`${first} .*DONE .*keep +window +inside the recovery window`));
  assert.match(dry.stdout, /grafana-pg-on-demand +DONE .*keep +window +inside the recovery window/);
  assert.match(dry.stdout, /Nothing to delete\./);
  assert.doesNotMatch(dry.stdout + dry.stderr, /S3RVER/, 'no secret value printed');

  const drill = await pgark(['drill', '-f', manifest, '--json'], pg.env);
  assert.equal(drill.code, 0, drill.stderr);
  const report = JSON.parse(drill.stdout) as { ok: boolean; serverName: string };
  assert.equal(report.ok, true, 'a drill restores a plugin-form Cluster from its ObjectStore');
  assert.equal(report.serverName, 'grafana-pg');

  const timeline = await pgark(['timeline', '-f', manifest, '--json'], pg.env);
  assert.equal(timeline.code, 0, timeline.stderr);
  assert.equal((JSON.parse(timeline.stdout) as { retention: { policy: string } | null }).retention?.policy, '30d', "the ObjectStore's retentionPolicy draws the window");
});

test("agent: the seed's ScheduledBackup, migrated to method: plugin, backs up into the ObjectStore", { timeout: 400_000 }, async () => {
  const port = await freePort();
  const agent = startAgent(['-f', join(out, 's3-backup.yaml'), '-f', join(out, 'scheduled-backup.yaml'), '--state-dir', join(work.path, 'agent-state'), '--pgdata', pg.pgdata, '--retention-interval', '1h'], {
    who: pg.who,
    env: pg.env,
    port,
  });
  try {
    const status = await waitFor('the immediate backup completed', async () => {
      const s = await getStatus(agent.url);
      return s.backups.some((b) => b.phase === 'completed') ? s : undefined;
    }, 300_000, agent);
    const done = status.backups.find((b) => b.phase === 'completed')!;
    assert.equal(done.scheduledBackup, 'grafana-pg-backup');
    assert.ok(done.immediate);
    const cluster = status.clusters.find((c) => c.name === 'grafana-pg');
    assert.equal(cluster?.retentionPolicy, '30d', "the ObjectStore's retentionPolicy");
    assert.match(cluster?.destination ?? '', /^s3:\/\/grafana-backup\/backups/);
    const list = await pgark(['backup', 'list', '-f', join(out, 's3-backup.yaml')]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(done.name));
  } finally {
    agent.proc.kill('SIGTERM');
    await agent.exited;
  }
});
