/**
 * The pgark agent as a child process (run as PostgreSQL's OS user, as in production, so the WAL
 * client can reach its socket), and small readers of its HTTP endpoints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import type { RunAs } from '../../src/pg/local-server.js';
import type { AgentStatus } from '../../src/agent/status-cli.js';
import type { AgentStateFile } from '../../src/agent/state.js';
import type { BackupPhase } from '../../src/agent/phases.js';

export const PGARK = join(PACKAGE_ROOT, 'bin', 'pgark.js');

export interface AgentProcess {
  proc: ChildProcess;
  url: string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startAgent(args: string[], opts: { who?: RunAs; env?: Record<string, string>; port: number }): AgentProcess {
  const proc = spawn(process.execPath, [PGARK, 'agent', '--listen', `127.0.0.1:${opts.port}`, ...args], {
    env: { ...process.env, PGARK_LOG_LEVEL: 'info', ...opts.env },
    uid: opts.who?.uid,
    gid: opts.who?.gid,
    cwd: '/tmp',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => {
    err += d;
    if (process.env.PGARK_TEST_VERBOSE) process.stderr.write(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, url: `http://127.0.0.1:${opts.port}`, stderr: () => err, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined); fails with `what` and the agent log after `limitMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 180_000, agent?: AgentProcess): Promise<T> {
  const deadline = Date.now() + limitMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}\n--- agent log tail ---\n${agent?.stderr().slice(-4000) ?? ''}`);
    }
    await sleep(250);
  }
}

export async function getStatus(url: string): Promise<AgentStatus> {
  const res = await fetch(`${url}/status`);
  if (!res.ok) throw new Error(`/status answered ${res.status}`);
  return (await res.json()) as AgentStatus;
}

export async function getText(url: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: await res.text() };
}

/** The value of one sample of the Prometheus text exposition, e.g. metric(text, 'x', {cluster: 'pg'}). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

export function readState(stateDir: string): AgentStateFile {
  return JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as AgentStateFile;
}

/**
 * Records every phase each backup shows across /status polls, to check that phases never move
 * backwards (call record() from a polling loop, then sequences()).
 */
export class PhaseRecorder {
  private readonly seen = new Map<string, BackupPhase[]>();

  record(status: Pick<AgentStatus, 'backups'>): void {
    for (const b of status.backups) {
      const list = this.seen.get(b.name) ?? [];
      if (list[list.length - 1] !== b.phase) list.push(b.phase);
      this.seen.set(b.name, list);
    }
  }

  sequences(): Map<string, BackupPhase[]> {
    return this.seen;
  }
}

export function scheduledBackupYaml(name: string, cluster: string, schedule: string, extra: Record<string, unknown> = {}): string {
  const lines = [
    'apiVersion: postgresql.cnpg.io/v1',
    'kind: ScheduledBackup',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  schedule: "${schedule}"`,
    '  cluster:',
    `    name: ${cluster}`,
    ...Object.entries(extra).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
  ];
  return lines.join('\n') + '\n';
}
