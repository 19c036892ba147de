/**
 * Store-fault cells: the HTTP fault proxy between pgark and s3rver / Azurite injects throttling,
 * resets mid-upload and mid-download, truncated GET bodies, a failing multipart commit, a hang and
 * latency spikes while WAL is archived, a backup runs or a restore downloads; and credentials that
 * expire in the middle of a long backup. One PostgreSQL and store per provider serve all of them.
 */
import type { StoreKind } from '../../test/harness/stores.js';
import { matchers, type FaultRule } from '../../test/harness/http-faults.js';
import { backup, checkArchive, checkBackups, checkSecrets, checkStuck, judgeRestore, pgbench, restoreOnce, sleep, startSite, tableChecksum, waitArchived, writeRows, type Site } from './site.js';
import type { Tally } from './tally.js';
import type { Cell, RunContext } from './cell.js';

type Provider = 's3' | 'azure';
const KIND: Record<Provider, StoreKind> = { s3: 's3', azure: 'azure-key' };
const THROTTLE: Record<Provider, string> = { s3: 'SlowDown', azure: 'ServerBusy' };
/** What each provider answers once a credential has expired. */
const EXPIRED: Record<Provider, { status: number; code: string }> = { s3: { status: 400, code: 'ExpiredToken' }, azure: { status: 403, code: 'AuthenticationFailed' } };

const int = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

interface StoreFault {
  name: string;
  about: string;
  phase: 'archive' | 'backup' | 'restore';
  /** false: left out of --quick (kill-archiver and reset-upload-wal already fail WAL uploads there; latency only slows). */
  quick?: false;
  rules(p: Provider, trial: number, ctx: RunContext): FaultRule[];
}

const FAULTS: StoreFault[] = [
  { name: 'throttle-wal', about: '503 SlowDown/ServerBusy bursts (1-8) while WAL is archived', phase: 'archive', quick: false, rules: (p) => [{ match: matchers.put, fault: { kind: 'status', status: 503, code: THROTTLE[p] }, times: int(1, 8) }] },
  { name: 'throttle-backup', about: '503 bursts (1-8) on any request of a backup', phase: 'backup', rules: (p) => [{ match: matchers.any, fault: { kind: 'status', status: 503, code: THROTTLE[p] }, times: int(1, 8) }] },
  {
    name: 'reset-upload-wal',
    about: 'connection reset after a random part of a WAL upload (or after the whole body, before the answer)',
    phase: 'archive',
    rules: () => [{ match: matchers.under('/wals/'), fault: { kind: 'reset-request', afterBytes: int(0, 20 << 20) }, times: int(1, 3) }],
  },
  {
    name: 'reset-upload-backup',
    about: 'connection reset mid-upload of data.tar parts / blocks',
    phase: 'backup',
    rules: () => [{ match: (r) => matchers.put(r) && matchers.under('/base/')(r), fault: { kind: 'reset-request', afterBytes: int(0, 8 << 20) }, times: int(1, 3) }],
  },
  { name: 'reset-download', about: 'connection reset mid-download during a restore', phase: 'restore', rules: () => [{ match: matchers.get, fault: { kind: 'reset-response', afterBytes: int(0, 4 << 20) }, times: int(1, 3) }] },
  { name: 'truncated-get', about: 'GET bodies cut short of their Content-Length during a restore', phase: 'restore', rules: () => [{ match: matchers.get, fault: { kind: 'truncate', keepBytes: int(0, 4 << 20) }, times: int(1, 3) }] },
  {
    name: 'complete-500',
    about: '500 on CompleteMultipartUpload / Put Block List: once (odd trials) or always (even trials)',
    phase: 'backup',
    rules: (_p, trial) => [{ match: matchers.complete, fault: { kind: 'status', status: 500, code: 'InternalError' }, times: trial % 2 ? 1 : Infinity }],
  },
  { name: 'hang', about: 'one data.tar upload request gets no bytes back for --hang-seconds', phase: 'backup', rules: (_p, _t, ctx) => [{ match: (r) => matchers.put(r) && matchers.under('/base/')(r), fault: { kind: 'hang', ms: ctx.hangMs }, times: 1 }] },
  { name: 'latency', about: '0.2-2 s latency spikes on 30% of requests during a restore', phase: 'restore', quick: false, rules: () => [{ match: matchers.any, fault: { kind: 'delay', ms: int(200, 2000) }, times: Infinity, probability: 0.3 }] },
];

/** One proxied site per provider, with a base backup and the load tables in place. */
async function providerSite(ctx: RunContext, p: Provider): Promise<Site> {
  return ctx.shared(`store-${p}`, async () => {
    const site = await startSite(`store-${p}`, { kind: KIND[p], servers: ctx.servers, proxy: true, walCompression: 'gzip', archiveEnv: { PGARK_STORAGE_MAX_ATTEMPTS: '4' } });
    await pgbench(site.pg, ['-i', '-s', ctx.quick ? '3' : '5', '-q']);
    await writeRows(site.pg, 2000);
    const b = await backup(site, { deadlineMs: 600_000 });
    if (b.code !== 0) throw new Error(`the first backup of the ${p} site failed: ${b.stderr}`);
    return site;
  });
}

/** Backup deadline: long enough for a hang plus the retries after it, short enough to catch unbounded retrying. */
const backupDeadline = (ctx: RunContext) => ctx.hangMs + 240_000;

async function trialOf(ctx: RunContext, t: Tally, site: Site, p: Provider, f: StoreFault, trial: number): Promise<string> {
  const proxy = site.proxy!;
  const before = proxy.injected;
  if (f.phase === 'archive') {
    for (const r of f.rules(p, trial, ctx)) proxy.add(r);
    await writeRows(site.pg, 2000);
    await pgbench(site.pg, ['-c', '2', '-T', '2', '-n']);
    await site.pg.query('SELECT pg_switch_wal()');
    await sleep(3000);
    proxy.clear();
    if (await waitArchived(site, t, trial)) await checkArchive(site, t, trial);
    return `${proxy.injected - before} faults injected`;
  }
  if (f.phase === 'backup') {
    await writeRows(site.pg, 2000);
    for (const r of f.rules(p, trial, ctx)) proxy.add(r);
    const r = await backup(site, { deadlineMs: backupDeadline(ctx) });
    proxy.clear();
    checkStuck(t, trial, r, 'pgark backup');
    checkSecrets(t, trial, site.secrets, r, 'pgark backup');
    const c = await checkBackups(site, t, trial);
    return `${proxy.injected - before} faults injected; backup exit ${r.code ?? r.signal}; ${c.done} DONE, ${c.other} other`;
  }
  if (!(await waitArchived(site, t, trial))) return 'archive behind';
  const expected = await tableChecksum(site.pg);
  for (const r of f.rules(p, trial, ctx)) proxy.add(r);
  const a = await restoreOnce(site, { deadlineMs: 600_000 });
  proxy.clear();
  checkStuck(t, trial, a.result, 'pgark restore');
  checkSecrets(t, trial, site.secrets, a.result, 'pgark restore');
  await judgeRestore(t, trial, a, expected, `restore under ${f.name}`);
  await a.cleanup();
  return `${proxy.injected - before} faults injected; restore exit ${a.result.code ?? a.result.signal}`;
}

const faultCells: Cell[] = (['s3', 'azure'] as Provider[]).flatMap((p, pi) =>
  FAULTS.map(
    (f, fi): Cell => ({
      name: `${p}-${f.name}`,
      about: `${p}: ${f.about}`,
      kind: 'store',
      // Quick runs each fault once, on alternating providers.
      quick: f.quick !== false && fi % 2 === pi,
      async run(ctx, t) {
        const site = await providerSite(ctx, p);
        for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
          t.trials++;
          ctx.log(`${t.cell} #${trial}: ${await trialOf(ctx, t, site, p, f, trial)}`);
        }
      },
    }),
  ),
);

/**
 * A backup slowed down by latency loses its credentials at a random moment (every request answered
 * like an expired key from then on): it must fail, promptly, without a DONE backup.info and without
 * printing the credential; once the credentials are renewed the next backup must succeed whole.
 */
const credentialCells: Cell[] = (['s3', 'azure'] as Provider[]).map(
  (p): Cell => ({
    name: `${p}-credential-expiry`,
    about: `${p}: credentials expire mid-backup, then are renewed`,
    kind: 'credentials',
    // Azure credentials are exercised in --quick by azure-credential-rotation.
    quick: p === 's3',
    async run(ctx, t) {
      const site = await providerSite(ctx, p);
      const proxy = site.proxy!;
      for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
        t.trials++;
        await writeRows(site.pg, 2000);
        proxy.add({ match: matchers.any, fault: { kind: 'delay', ms: 150 }, times: Infinity });
        const running = backup(site, { deadlineMs: 300_000 });
        await sleep(int(500, 6000));
        proxy.clear();
        proxy.add({ match: matchers.any, fault: { kind: 'status', ...EXPIRED[p] }, times: Infinity });
        const expired = await running;
        proxy.clear();
        checkStuck(t, trial, expired, 'pgark backup with expired credentials');
        checkSecrets(t, trial, site.secrets, expired, 'pgark backup with expired credentials');
        await checkBackups(site, t, trial);
        const renewed = await backup(site, { deadlineMs: 600_000 });
        if (renewed.code !== 0) t.notes.push(`${t.cell} #${trial}: the backup after renewal failed: ${renewed.stderr.slice(-300)}`);
        await checkBackups(site, t, trial);
        ctx.log(`${t.cell} #${trial}: expired backup exit ${expired.code ?? expired.signal}, renewed exit ${renewed.code}`);
      }
    },
  }),
);

export const storeCells: Cell[] = [...faultCells, ...credentialCells];
