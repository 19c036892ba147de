/**
 * One agent per state directory, decided by the process lock: 20 `pgark agent` processes started
 * at once, a winner killed with -9, and a lock file naming a live (reused) PID. And an agent run
 * as root for a data directory that belongs to another user is refused before it creates anything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { PGARK } from './helpers.js';

const NOBODY = 65534;

interface Agent {
  child: ChildProcess;
  stderr(): string;
  /** 'running' once the agent logged that it runs, else its exit code. */
  outcome: Promise<'running' | number | null>;
}

describe('pgark agent: the state directory lock', () => {
  let store: TestStore;
  const dir = scratchDir('agent-lock-race');
  const manifest = join(dir.path, 'cluster.yaml');
  const agents: Agent[] = [];

  before(async () => {
    store = await startStore('file');
    writeFileSync(manifest, store.manifest({ clusterName: 'pg' }));
  });
  after(async () => {
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
    await store?.stop();
    dir.cleanup();
  });

  function agent(stateDir: string, extra: string[] = []): Agent {
    const child = spawn(process.execPath, [PGARK, 'agent', '-f', manifest, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--refresh-interval', '1h', ...extra], {
      env: { ...process.env, PGARK_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const outcome = new Promise<'running' | number | null>((resolve) => {
      child.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('pgark agent running')) resolve('running');
      });
      child.on('exit', (code) => resolve(code));
    });
    const a = { child, stderr: () => err, outcome };
    agents.push(a);
    return a;
  }

  async function stop(a: Agent): Promise<void> {
    a.child.kill('SIGTERM');
    await new Promise((r) => (a.child.exitCode !== null ? r(undefined) : a.child.once('exit', r)));
  }

  it('20 agents started at once over a stale lock file: exactly one runs, the others exit 2 naming it; kill -9 it and the next runs at once; a reused PID does not block', async () => {
    const stateDir = join(dir.path, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(join(stateDir, 'agent.lock'), '2147483646'); // an agent that died long ago
    const contenders = Array.from({ length: 20 }, () => agent(stateDir));
    const outcomes = await Promise.all(contenders.map((a) => a.outcome));
    const winners = contenders.filter((_, i) => outcomes[i] === 'running');
    assert.equal(winners.length, 1, `exactly one agent runs: ${JSON.stringify(outcomes)}`);
    const [winner] = winners;
    for (const a of contenders) {
      if (a === winner) continue;
      assert.equal(await a.outcome, 2, a.stderr());
      assert.match(a.stderr(), new RegExp(`another pgark agent \\(pid ${winner.child.pid}\\) uses the state directory`));
    }

    winner.child.kill('SIGKILL');
    await new Promise((r) => winner.child.once('exit', r));
    const next = agent(stateDir);
    assert.equal(await next.outcome, 'running', next.stderr());
    await stop(next);

    // PID 1 is alive: an old lock file naming a PID the system gave to another process.
    writeFileSync(join(stateDir, 'agent.lock'), '1');
    const third = agent(stateDir);
    assert.equal(await third.outcome, 'running', third.stderr());
    await stop(third);
    assert.ok(!existsSync(join(stateDir, 'agent.lock')), 'a clean stop removes its own lock file');
  });

  it('as root, for a data directory owned by another user: refused with exit 2 before anything is created', async () => {
    const pgdata = join(dir.path, 'foreign-pgdata');
    mkdirSync(pgdata, { mode: 0o700 });
    chownSync(pgdata, NOBODY, NOBODY);
    const stateDir = join(dir.path, 'state-root');
    const a = agent(stateDir, ['--pgdata', pgdata]);
    const outcome = await a.outcome;
    if (outcome === 'running') await stop(a);
    assert.equal(outcome, 2, a.stderr());
    assert.match(a.stderr(), new RegExp(`pgark agent runs as uid 0, but the data directory ${pgdata} belongs to uid 65534`));
    assert.match(a.stderr(), /run the agent as PostgreSQL's OS user \(uid 65534\)/);
    assert.equal(existsSync(stateDir), false, 'no state directory created');
    assert.equal(existsSync(join(pgdata, 'pgark-wal')), false, 'no runtime directory created');
  });
});
