/**
 * Runs a snippet against the real barman 3.4 Python modules installed by Debian
 * (/usr/bin/python3 can import `barman`). The snippet reads JSON from `inp` and assigns `out`,
 * which is printed as JSON.
 */
import { spawnSync } from 'node:child_process';
import { BARMAN_PYTHON_ENV } from '../harness/barman.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';

export function runBarmanPython(snippet: string, input: unknown): any {
  const program = [
    'import sys, json, io, ast, datetime',
    'import dateutil.tz, dateutil.parser',
    'from barman.infofile import BackupInfo, Tablespace',
    'inp = json.loads(sys.stdin.read())',
    'out = None',
    snippet,
    'sys.stdout.write(json.dumps(out))',
  ].join('\n');
  const r = spawnSync(SYSTEM_PYTHON, ['-c', program], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    env: { ...process.env, ...BARMAN_PYTHON_ENV, TZ: 'UTC' },
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
