import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';

/** The POSIX sh launcher (the npm bin): answers archive_command from the daemon's markers, else runs bin/pgark.js. */
export const PGARK_LAUNCHER = join(PACKAGE_ROOT, 'bin', 'pgark');

/**
 * pids of pgark WAL processes (the sh launcher `launcher`, the Node client, the resident daemon)
 * whose command line mentions `needle` (a data directory or a manifest): what the kill -9 tests
 * and the fault matrix kill.
 */
export function walProcessPids(needle: string, launcher: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const ours = argv[0] === process.execPath || argv.includes(launcher);
      if (ours && argv.some((a) => a.includes(needle)) && argv.some((a) => a === 'wal-archive' || a.endsWith('daemon-main.js'))) pids.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

