/** Running the drop-ins' command functions in-process and Debian's barman-cloud 3.4 on the same store, for comparison. */
import { spawnSync } from 'node:child_process';
import type { TestStore } from '../harness/stores.js';
import type { BarmanLog } from '../../src/commands/barman-cloud/common.js';

export interface Captured {
  log: BarmanLog;
  out: (text: string) => void;
  stdout(): string;
  stderr(): string;
}

export function capture(): Captured {
  let out = '';
  const err: string[] = [];
  const line = (level: string) => (m: string) => void err.push(`${level}: ${m}`);
  return { log: { info: line('INFO'), warning: line('WARNING'), error: line('ERROR'), debug: line('DEBUG') }, out: (t) => void (out += t), stdout: () => out, stderr: () => err.join('\n') };
}

export interface BarmanRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** barman-cloud-<command> 3.4 with the store's provider options, then `positionals` (destination and server first). */
export function barman(store: TestStore, command: string, args: string[], positionals: string[], env: Record<string, string> = {}): BarmanRun {
  const r = spawnSync(command, [...store.barman!.args, ...args, store.destinationPath, ...positionals], {
    encoding: 'utf8',
    env: { ...process.env, ...store.barman!.env, TZ: 'UTC', ...env },
    timeout: 600_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

