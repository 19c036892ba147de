/**
 * Running pgark's barman-cloud drop-ins as CloudNativePG does: by bare name through PATH (Go's
 * exec.Command), or shell-quoted for PostgreSQL's `sh -c`; and stopping the daemons they start.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';
import { walRuntime } from '../../src/wal/runtime.js';

export const DROPINS = join(PACKAGE_ROOT, 'bin', 'barman-cloud');

/** Go's shellquote.Join, as CNPG quotes restore_command. */
export function shellJoin(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Environment in which the bare names resolve to the drop-ins (and node is found). */
export function dropinEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${DROPINS}:${dirname(process.execPath)}:${process.env.PATH}`, PGARK_WAL_DAEMON_IDLE_SECONDS: '5', ...extra };
}

/** Runs a drop-in by bare name through PATH. */
export function runDropin(tool: string, args: string[], env: Record<string, string>, cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(tool, args, { env: dropinEnv(env), cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Stops every drop-in daemon under a data directory's runtime directory. */
export async function stopDropinDaemons(pgdata: string): Promise<void> {
  const base = join(pgdata, 'pgark-wal');
  for (const d of existsSync(base) ? readdirSync(base).filter((n) => n.startsWith('barman-')) : []) {
    const lock = walRuntime(pgdata, d).lockFile;
    if (!existsSync(lock)) continue;
    try {
      process.kill(Number(readFileSync(lock, 'utf8')), 'SIGTERM');
    } catch {
      // gone already
    }
  }
  await new Promise((r) => setTimeout(r, 200));
}
