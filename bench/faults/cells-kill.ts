/**
 * kill -9 cells: the WAL archiver (sh launcher, Node client, resident daemon) at random moments
 * under pgbench; the agent hosting the WAL fast path; a base backup at a random point of its run;
 * a restore at a random point, followed by a second restore into the same directory.
 */
import { join } from 'node:path';
import { freePort } from '../../test/harness/ports.js';
import { scratchDir } from '../../test/harness/tmp.js';
import { walProcessPids } from '../../test/harness/wal-processes.js';
import { getStatus, startAgent, waitFor, type AgentProcess } from '../../test/agent/helpers.js';
import { LAUNCHER, backup, checkArchive, checkBackups, checkSecrets, checkStuck, judgeRestore, pgbench, restoreOnce, restoreSource, sleep, startSite, timed, waitArchived, withSite, writeRows, type Site } from './site.js';
import type { Cell } from './cell.js';

const archiverPids = (needle: string) => walProcessPids(needle, LAUNCHER);

const random = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** kill -9 of the resident WAL daemon of the site's data directory, if one runs. */
function killDaemon(site: Site): void {
  for (const pid of archiverPids(site.pg.pgdata)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** `pgark agent --pgdata` as the server's user, once it serves the WAL socket (so a kill hits the host, not a bystander). */
async function agentServing(site: Site, stateDir: string): Promise<AgentProcess> {
  const agent = startAgent(['-f', site.manifest, '--pgdata', site.pg.pgdata, '--state-dir', stateDir, '--refresh-interval', '1m'], {
    who: site.pg.who,
    env: { ...site.pg.env, PGARK_NODE: process.execPath, PGARK_LOG_LEVEL: 'warn' },
    port: await freePort(),
  });
  await waitFor('the agent to serve the WAL fast path', async () => ((await getStatus(agent.url)).agent.walFastPath ? true : undefined), 60_000, agent);
  return agent;
}

export const killCells: Cell[] = [
  {
    name: 'kill-archiver',
    about: 'kill -9 of the archive_command launcher/client and the WAL daemon at random moments under pgbench (s3, zstd)',
    kind: 'kill',
    async run(ctx, t) {
      const site = await startSite(t.cell, { kind: 's3', servers: ctx.servers, walCompression: 'zstd' });
      try {
        await pgbench(site.pg, ['-i', '-s', '2', '-q']);
        for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
          t.trials++;
          let stop = false;
          let killed = 0;
          const chaos = (async () => {
            while (!stop) {
              await sleep(random(50, 900));
              const pids = [...archiverPids(site.pg.pgdata), ...archiverPids(site.manifest)];
              if (pids.length === 0) continue;
              // One process at a time, so the launcher, a client and the daemon each get killed in every state.
              const pid = pids[Math.floor(Math.random() * pids.length)];
              try {
                process.kill(pid, 'SIGKILL');
                killed++;
              } catch {
                // already gone
              }
            }
          })();
          await Promise.all([pgbench(site.pg, ['-c', '2', '-T', '3', '-n']), writeRows(site.pg, 150_000)]);
          await site.pg.query('SELECT pg_switch_wal()');
          await sleep(random(0, 1500));
          stop = true;
          await chaos;
          if (await waitArchived(site, t, trial)) await checkArchive(site, t, trial);
          ctx.log(`${t.cell} #${trial}: ${killed} processes killed, ${site.verifiedWal.size} WAL files checked so far`);
        }
        await checkArchive(site, t, t.trials, true);
      } finally {
        await site.stop();
      }
    },
  },
  {
    name: 'kill-agent',
    about: 'kill -9 of pgark agent while it hosts the WAL fast path under pgbench; a new agent (odd trials) or the plain client (even) takes over (s3, zstd)',
    kind: 'kill',
    run: (ctx, t) =>
      withSite(t.cell, { kind: 's3', servers: ctx.servers, walCompression: 'zstd' }, async (site) => {
        const state = scratchDir('faults-agent');
        let agent: AgentProcess | undefined;
        try {
          await pgbench(site.pg, ['-i', '-s', '2', '-q']);
          for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
            t.trials++;
            // A daemon the plain client started in the last trial would keep the agent waiting for its idle exit.
            killDaemon(site);
            const victim = await agentServing(site, join(state.path, 'state'));
            const load = Promise.all([pgbench(site.pg, ['-c', '2', '-T', '3', '-n']), writeRows(site.pg, 150_000)]);
            const killAfter = random(200, 3500);
            await sleep(killAfter);
            victim.proc.kill('SIGKILL');
            await victim.exited;
            await load;
            agent = trial % 2 ? await agentServing(site, join(state.path, 'state')) : undefined;
            if (await waitArchived(site, t, trial)) await checkArchive(site, t, trial);
            ctx.log(`${t.cell} #${trial}: agent killed after ${killAfter.toFixed(0)} ms; ${agent ? 'a new agent' : 'the plain client'} took over; ${site.verifiedWal.size} WAL files checked so far`);
            if (agent) {
              agent.proc.kill('SIGTERM');
              await agent.exited;
              agent = undefined;
            }
          }
          await checkArchive(site, t, t.trials, true);
        } finally {
          agent?.proc.kill('SIGKILL');
          killDaemon(site);
          state.cleanup();
        }
      }),
  },
  {
    name: 'kill-backup',
    about: 'kill -9 of pgark backup at a random point of its run; no DONE backup may be incomplete (s3, gzip)',
    kind: 'kill',
    run: (ctx, t) =>
      withSite(t.cell, { kind: 's3', servers: ctx.servers, dataCompression: 'gzip' }, async (site) => {
        await pgbench(site.pg, ['-i', '-s', ctx.quick ? '3' : '6', '-q']);
        const [first, duration] = await timed(() => backup(site, { deadlineMs: 600_000 }));
        if (first.code !== 0) throw new Error(`the calibration backup failed: ${first.stderr}`);
        for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
          t.trials++;
          await writeRows(site.pg, 1000);
          const r = await backup(site, { killAfterMs: random(0.05, 1.1) * duration, deadlineMs: 600_000 });
          checkStuck(t, trial, r, 'pgark backup');
          checkSecrets(t, trial, site.secrets, r, 'pgark backup');
          const c = await checkBackups(site, t, trial);
          ctx.log(`${t.cell} #${trial}: ${r.signal ?? `exit ${r.code}`}; ${c.done} DONE, ${c.other} other`);
        }
        if (await waitArchived(site, t, t.trials)) await checkArchive(site, t, t.trials, true);
      }),
  },
  {
    name: 'kill-restore',
    about: 'kill -9 of pgark restore --start at a random point, then a second restore into the same directory (s3)',
    kind: 'kill',
    run: (ctx, t) =>
      withSite(t.cell, { kind: 's3', servers: ctx.servers, walCompression: 'gzip' }, async (site) => {
        const { expected } = await restoreSource(site, t);
        const [calibration, duration] = await timed(() => restoreOnce(site, { deadlineMs: 600_000 }));
        await judgeRestore(t, 0, calibration, expected, 'calibration restore');
        await calibration.cleanup();
        if (calibration.result.code !== 0) throw new Error(`the calibration restore failed: ${calibration.result.stderr}`);
        for (let trial = 1; trial <= ctx.trials(t.cell); trial++) {
          t.trials++;
          const killed = await restoreOnce(site, { killAfterMs: random(0.05, 1.0) * duration, deadlineMs: 600_000 });
          await judgeRestore(t, trial, killed, expected, 'restore before its kill');
          // PostgreSQL started by the killed restore keeps running; stop it so the second restore meets the directory as a user would.
          await killed.stopServer();
          const again = await restoreOnce(site, { pgdata: killed.pgdata, deadlineMs: 600_000 });
          checkStuck(t, trial, again.result, 'second pgark restore');
          checkSecrets(t, trial, site.secrets, again.result, 'pgark restore');
          await judgeRestore(t, trial, again, expected, 'restore into the directory of a killed restore');
          ctx.log(`${t.cell} #${trial}: killed ${killed.result.signal ?? `(finished, exit ${killed.result.code})`}; second restore exit ${again.result.code}`);
          await again.cleanup();
          await killed.cleanup();
        }
      }),
  },
];
