/** Runs barman-cloud-* 3.4 commands against a test store (s3rver or Azurite). */
import { spawnSync } from 'node:child_process';
import type { TestStore } from '../harness/stores.js';

export interface BarmanRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function barmanCloud(store: TestStore, command: string, args: string[], serverName: string): BarmanRun {
  if (!store.barman) throw new Error(`barman-cloud cannot reach a ${store.kind} store`);
  const r = spawnSync(command, [...store.barman.args, ...args, store.destinationPath, serverName], {
    encoding: 'utf8',
    env: { ...process.env, ...store.barman.env, TZ: 'UTC' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
