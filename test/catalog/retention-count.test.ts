/**
 * Retention by count: REDUNDANCY n agrees with barman-cloud-backup-delete 3.4 --dry-run, and a
 * window with a minimum redundancy agrees with barman 3.4's own RecoveryWindowRetentionPolicy run
 * inside barman-cloud-backup-delete (whose 3.4 CLI has no --minimum-redundancy flag: the snippet
 * sets ServerMetadata.minimum_redundancy, the value barman's server configuration supplies), on the
 * same catalogs in a real s3rver. Then `pgark retention --dry-run` explains each decision's rule
 * from the Cluster annotation, and bad annotation values fail at file:line:col, deleting nothing;
 * the plugin reads its retentionRedundancy parameter (pure: the Cluster JSON CNPG sends).
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listBackups } from '../../src/catalog/catalog.js';
import { walsPrefix } from '../../src/catalog/layout.js';
import { combineRetention, planFromCatalog, type RetentionPolicy } from '../../src/catalog/retention.js';
import { openObjectStore } from '../../src/storage/open.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { allKeys, backupIdAt, DAY, segments, type SyntheticBackup } from './synthetic.js';
import { populate, scenario, walObjects } from './scenarios.js';
import { SYSTEM_PYTHON } from './barman-python.js';
import { readCluster } from '../../src/plugin/config.js';
import { clusterRetentionRedundancy as retentionRedundancy } from '../../src/config/retention-redundancy.js';

const SERVER = 'pg';
const stripWal = (key: string) => key.slice(key.lastIndexOf('/') + 1).replace(/\.gz$/, '');

/** barman-cloud-backup-delete 3.4's main() with `minimumRedundancy` as barman's server config would set it. */
function barmanDelete(ts: TestStore, barmanPolicy: string, minimumRedundancy: number) {
  const program = [
    'import sys, barman.retention_policies as rp',
    'init = rp.ServerMetadata.__init__',
    'def patched(self, *a, **k):',
    '    init(self, *a, **k)',
    `    self.minimum_redundancy = ${minimumRedundancy}`,
    'rp.ServerMetadata.__init__ = patched',
    'from barman.clients.cloud_backup_delete import main',
    'sys.argv = ["barman-cloud-backup-delete"] + sys.argv[1:]',
    'main()',
  ].join('\n');
  const r = spawnSync(
    SYSTEM_PYTHON,
    ['-c', program, ...ts.barman!.args, '--retention-policy', barmanPolicy, '--dry-run', ts.destinationPath, SERVER],
    { encoding: 'utf8', env: { ...process.env, ...ts.barman!.env, TZ: 'UTC' }, timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const keys: string[] = [];
  for (const m of (r.stdout + r.stderr).matchAll(/Skipping deletion of objects \[(.*)\] due to --dry-run option/g)) {
    for (const q of m[1].matchAll(/'([^']*)'/g)) keys.push(q[1]);
  }
  const root = new URL(ts.destinationPath).pathname.replace(/^\//, '');
  return keys.map((k) => (root && k.startsWith(root + '/') ? k.slice(root.length + 1) : k));
}

/** A single-timeline catalog whose backups are all older than a 30-day window, one keep:standalone. */
function allOld(now: number): ReturnType<typeof scenario> {
  const at = (daysAgo: number) => new Date(now - daysAgo * DAY);
  const b = (daysAgo: number, seg: number, status?: 'FAILED'): SyntheticBackup => ({ id: backupIdAt(at(daysAgo)), timeline: 1, beginSeg: seg, endSeg: seg, endTime: at(daysAgo), status });
  const backups = [b(100, 2), b(90, 4), b(80, 6, 'FAILED'), b(70, 8), b(60, 10), b(50, 12)];
  return { backups, wals: segments(1, 1, 14), keep: new Map([[backups[1].id, 'standalone' as const]]) };
}

const CASES: { name: string; catalog: (now: number) => ReturnType<typeof scenario>; window?: string; redundancy: number; expectDeleted: number }[] = [
  { name: 'REDUNDANCY 1, three timelines', catalog: scenario, redundancy: 1, expectDeleted: 5 },
  { name: 'REDUNDANCY 2, three timelines', catalog: scenario, redundancy: 2, expectDeleted: 4 },
  { name: 'REDUNDANCY 4, three timelines', catalog: scenario, redundancy: 4, expectDeleted: 2 },
  { name: 'REDUNDANCY 2, a keep:standalone backup among old ones', catalog: allOld, redundancy: 2, expectDeleted: 2 },
  { name: '30d with minimum redundancy 4, three timelines', catalog: scenario, window: '30d', redundancy: 4, expectDeleted: 2 },
  { name: '30d with minimum redundancy 3, all backups older', catalog: allOld, window: '30d', redundancy: 3, expectDeleted: 1 },
  { name: '30d with minimum redundancy 1 (the window alone decides)', catalog: allOld, window: '30d', redundancy: 1, expectDeleted: 3 },
];

test('retention by count agrees with barman 3.4 (REDUNDANCY n, and a window with minimum redundancy) on the same catalogs (s3rver)', async () => {
  const s3 = await startStore('s3');
  try {
    for (const c of CASES) {
      const ts = await startStore('s3', { s3rver: s3.s3rver });
      const store = await openObjectStore(ts.resolved(SERVER));
      try {
        const now = Date.now();
        await populate(store, c.catalog(now));
        const policy = combineRetention(c.window, c.redundancy) as RetentionPolicy;
        assert.equal(policy.kind, c.window ? 'window' : 'redundancy');
        const theirs = barmanDelete(ts, c.window ? policy.barman : `REDUNDANCY ${c.redundancy}`, c.window ? c.redundancy : 0);
        const theirBackups = [...new Set(theirs.filter((k) => k.endsWith('/backup.info')).map((k) => k.split('/').at(-2)!))].sort();
        const theirWal = theirs.filter((k) => k.startsWith(walsPrefix(SERVER))).map(stripWal).sort();

        const plan = planFromCatalog(await listBackups(store, SERVER), await walObjects(store), policy, new Date(now));
        const ourBackups = plan.steps.map((st) => st.backupId).sort();
        assert.deepEqual(ourBackups, theirBackups, `backups: ${c.name}`);
        assert.deepEqual(plan.steps.flatMap((st) => st.walKeys).map(stripWal).sort(), theirWal, `WAL: ${c.name}`);
        assert.equal(ourBackups.length, c.expectDeleted, `number deleted: ${c.name}`);
      } finally {
        await store.close();
        await ts.stop();
      }
    }
  } finally {
    await s3.stop();
  }
});

function pgark(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/pgark.js', ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The store's Cluster manifest with `annotation` under metadata.annotations, and the line it sits on. */
function annotated(ts: TestStore, value: string, backup: Record<string, unknown>): { text: string; line: number } {
  const text = ts.manifest({ clusterName: SERVER, backup }).replace(
    `metadata:\n  name: ${SERVER}\n`,
    `metadata:\n  name: ${SERVER}\n  annotations:\n    pgark.io/retention-redundancy: ${value}\n`,
  );
  const line = text.split('\n').findIndex((l) => l.includes('pgark.io/retention-redundancy')) + 1;
  return { text, line };
}

test('pgark retention --dry-run names the rule keeping each backup (window, window base, minimum redundancy, keep annotation); bad annotations fail at file:line:col', async () => {
  const ts = await startStore('s3');
  const dir = scratchDir('retention-count');
  const store = await openObjectStore(ts.resolved(SERVER));
  try {
    const s = allOld(Date.now());
    await populate(store, s);
    const before = await allKeys(store, '');
    const manifest = join(dir.path, 'cluster.yaml');
    writeFileSync(manifest, annotated(ts, '"3"', { retentionPolicy: '30d' }).text);

    const text = pgark(['retention', '-f', manifest, '--dry-run']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /: 30d, at least 3 backups \(RECOVERY WINDOW OF 30 DAYS\)/);
    assert.match(text.stdout, /; at least 3 backups kept/);
    assert.match(text.stdout, new RegExp(`${s.backups[5].id} .*keep +window-base `));
    assert.match(text.stdout, new RegExp(`${s.backups[4].id} .*keep +minimum-redundancy +older than the window, kept for the minimum redundancy of 3`));
    assert.match(text.stdout, new RegExp(`${s.backups[1].id} .*keep +keep-annotation +keep:standalone annotation`));
    assert.match(text.stdout, new RegExp(`${s.backups[0].id} .*DELETE +obsolete `));

    const json = pgark(['retention', '-f', manifest, '--dry-run', '--json']);
    assert.equal(json.status, 0, json.stderr);
    const plan = JSON.parse(json.stdout);
    assert.equal(plan.minimumRedundancy, 3);
    // Newest first: 50d (window base), 60d and 70d make the 3; 90d is kept by its annotation only, 100d goes.
    assert.deepEqual(
      plan.backups.map((b: { rule: string }) => b.rule),
      ['obsolete', 'keep-annotation', 'not-done', 'minimum-redundancy', 'minimum-redundancy', 'window-base'],
    );

    // REDUNDANCY alone: no window.
    writeFileSync(manifest, annotated(ts, '"2"', {}).text);
    const count = JSON.parse(pgark(['retention', '-f', manifest, '--dry-run', '--json']).stdout);
    assert.equal(count.barmanPolicy, 'REDUNDANCY 2');
    assert.equal(count.pointOfRecoverability, null);
    assert.deepEqual(
      count.backups.map((b: { rule: string }) => b.rule),
      ['obsolete', 'keep-annotation', 'not-done', 'obsolete', 'redundancy', 'redundancy'],
    );

    for (const bad of ['"0"', '"three"', '"-1"', '3']) {
      const { text: doc, line } = annotated(ts, bad, { retentionPolicy: '30d' });
      writeFileSync(manifest, doc);
      const r = pgark(['retention', '-f', manifest]);
      assert.equal(r.status, 2, `${bad}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`cluster\\.yaml:${line}:\\d+: metadata\\.annotations(\\.|\\[")pgark\\.io/retention-redundancy`), bad);
      assert.match(r.stderr, /a whole number of backups, at least 1/, bad);
    }
    assert.deepEqual(await allKeys(store, ''), before, 'dry runs and refused runs delete nothing');
  } finally {
    await store.close();
    await ts.stop();
    dir.cleanup();
  }
});

test('plugin: the retentionRedundancy parameter, else the Cluster annotation; a bad value names its source', () => {
  const cluster = (parameters: Record<string, string>, annotations?: Record<string, string>) =>
    readCluster({ metadata: { name: 'pg', annotations }, spec: { plugins: [{ name: 'barman-cloud.cloudnative-pg.io', parameters: { barmanObjectName: 'store', ...parameters } }] } });
  const plugin = 'barman-cloud.cloudnative-pg.io';
  assert.equal(retentionRedundancy(cluster({ retentionRedundancy: '4' }, { 'pgark.io/retention-redundancy': '2' }), plugin), 4);
  assert.equal(retentionRedundancy(cluster({}, { 'pgark.io/retention-redundancy': '2' }), plugin), 2);
  assert.equal(retentionRedundancy(cluster({}), plugin), undefined);
  // Without a plugin name (the CLI, the agent), the served entry of a plugin-form Cluster is read.
  assert.equal(retentionRedundancy(cluster({ retentionRedundancy: '5' })), 5);
  assert.throws(() => retentionRedundancy(cluster({ retentionRedundancy: 'all' }), plugin), /parameter retentionRedundancy of the spec\.plugins entry .*"all" is not a number of backups/);
  assert.equal(combineRetention('30d', 4)?.barman, 'RECOVERY WINDOW OF 30 DAYS');
  assert.equal(combineRetention(undefined, undefined), undefined);
});
