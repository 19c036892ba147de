/**
 * Recovery chains: alpha is recovered to a time (beta, timeline 2), beta is backed up and recovered
 * to a time (gamma, timeline 3). Each generation's data and the facts `pgark restore --start`
 * prints must be its own, although the data directory it restores comes from a recovered server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { backupPrefix } from '../../src/catalog/layout.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { archiveCurrentWal, backupCluster, backupOrigin, batches, insertBatch, recoveryManifest, restore, startOrigin, type Origin, type Recovered } from './helpers.js';
import { CURRENT_TIMELINE_SQL } from '../../src/pg/connect.js';

let store: TestStore;
let alpha: Origin;
const recovered: Recovered[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  store = await startStore('file');
  alpha = await startOrigin(store, { clusterName: 'alpha' });
});

after(async () => {
  for (const r of recovered) await r.destroy();
  await alpha?.pg.destroy();
  await store?.stop();
});

/** A time strictly between two commits: the batch before it is kept, the one after it is not. */
async function timeMark(): Promise<string> {
  await sleep(1100);
  const t = new Date().toISOString();
  await sleep(1100);
  return t;
}

interface Generation extends Recovered {
  stdout: string;
  stderr: string;
}

async function recoverGeneration(name: string, sourceName: string, targetTime: string): Promise<Generation> {
  const { result, recovered: r } = await restore(recoveryManifest(store, { name, sourceName, recoveryTarget: { targetTime } }), ['--start']);
  recovered.push(r);
  assert.equal(result.code, 0, `pgark restore of ${name} failed:\n${result.stderr}`);
  return Object.assign(r, { stdout: result.stdout, stderr: result.stderr });
}

/** The transaction PostgreSQL stopped before, from this server's own log lines. */
function stoppingLines(text: string): string[] {
  return text.split('\n').filter((l) => /recovery stopping before/.test(l));
}

async function timeline(r: Recovered): Promise<number> {
  const [s] = await r.query<{ tli: number; rec: boolean }>(`SELECT pg_is_in_recovery() AS rec, ${CURRENT_TIMELINE_SQL} AS tli`);
  assert.equal(s.rec, false, 'promoted');
  return Number(s.tli);
}

/** Lines of the server log(s) this recovery produced that say the configuration could not be applied. */
function configErrors(r: Recovered): string[] {
  const dir = join(r.pgdata, 'log');
  return readdirSync(dir)
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter((l) => /contains errors|cannot be changed without restarting|syntax error/.test(l));
}

/** Recovery-only settings in a postgresql.auto.conf text (a recovery that read them would act on them). */
function recoveryLines(autoConf: string): string[] {
  return autoConf.split('\n').filter((l) => /^\s*(recovery_target\w*|restore_command|recovery_end_command)\s*=/.test(l));
}

function autoConfOf(r: Recovered): string {
  return readFileSync(join(r.pgdata, 'postgresql.auto.conf'), 'utf8');
}

/** postgresql.auto.conf as stored in an uncompressed data.tar of `serverName`'s backup `id`. */
function storedAutoConf(serverName: string, id: string): string {
  const tar = join(store.destinationPath.replace(/^file:\/\//, ''), backupPrefix(serverName, id), 'data.tar');
  const r = spawnSync('tar', ['-xOf', tar, './postgresql.auto.conf'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('three generations across timelines: alpha -> beta (TLI 2) -> gamma (TLI 3), each with its own data and facts', async () => {
  await backupOrigin(alpha);
  await insertBatch(alpha.pg, 1);
  const alphaMark = await timeMark();
  await insertBatch(alpha.pg, 2);
  await archiveCurrentWal(alpha.pg);

  const beta = await recoverGeneration('beta', 'alpha', alphaMark);
  assert.deepEqual(await batches(beta), [1]);
  assert.equal(await timeline(beta), 2);
  assert.match(beta.stderr, /promoted: new timeline 2\b/);
  assert.equal(stoppingLines(beta.stderr).length, 1, `one stop reported:\n${beta.stderr}`);
  assert.deepEqual(configErrors(beta), [], 'the reload at promotion applies cleanly');
  // The target alpha was recovered to must not outlive the promotion: a backup of beta would carry it.
  assert.deepEqual(recoveryLines(autoConfOf(beta)), [], `no recovery setting left after promotion:\n${autoConfOf(beta)}`);
  assert.match(autoConfOf(beta), /^archive_command = '.*wal-archive/m, "beta archives with its own pgark wal-archive");

  const betaEnv = { PGHOST: '127.0.0.1', PGPORT: String(beta.port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  await insertBatch(beta, 3);
  // Over BASE_BACKUP, which (unlike the local copy) carries PGDATA/log unless pgark leaves its own files out.
  const betaBackup = await backupCluster(beta.manifest, beta.pgdata, betaEnv, ['--method', 'remote']);
  // What any tool restoring this backup (CNPG, barman-cloud-restore, a standby from a copy) would read.
  const stored = storedAutoConf('beta', betaBackup);
  assert.match(stored, /archive_command/, 'the stored postgresql.auto.conf is the promoted one');
  assert.deepEqual(recoveryLines(stored), [], `beta's backup carries no recovery target of its own recovery:\n${stored}`);
  assert.deepEqual(configErrors(beta), [], 'nothing made the server reload a file it cannot apply');
  await insertBatch(beta, 4);
  const betaMark = await timeMark();
  await insertBatch(beta, 5);
  await archiveCurrentWal(beta);

  const gamma = await recoverGeneration('gamma', 'beta', betaMark);
  assert.deepEqual(await batches(gamma), [1, 3, 4]);
  assert.equal(await timeline(gamma), 3);
  // Only gamma's own recovery is reported: beta's "new timeline 2" and its stop must not reappear.
  assert.match(gamma.stderr, /promoted: new timeline 3\b/);
  assert.doesNotMatch(gamma.stderr, /new timeline 2\b/);
  const betaStop = stoppingLines(beta.stderr)[0].replace(/^.*target reached: /, '');
  const gammaStops = stoppingLines(gamma.stderr);
  assert.equal(gammaStops.length, 1, `one stop reported:\n${gamma.stderr}`);
  assert.ok(!gammaStops[0].includes(betaStop), `gamma reports its own stop, not beta's (${betaStop})`);
  assert.doesNotMatch(readFileSync(join(gamma.pgdata, 'log', 'pgark-recovery.log'), 'utf8'), /new timeline ID: 2\b/, "beta's recovery log is not part of beta's backup");
  assert.match(gamma.stdout, /Running: .*timeline 3, archive_command = .*wal-archive/);
  assert.deepEqual(configErrors(gamma), [], 'the reload at promotion applies cleanly');
  assert.deepEqual(recoveryLines(autoConfOf(gamma)), [], `no recovery setting left after promotion:\n${autoConfOf(gamma)}`);
});
