/** `pgark check`: run the preflight and print its report (a table, or JSON with --json). */
import type { PgConnectionOptions } from '../pg/connect.js';
import { runCheck } from '../preflight/check.js';
import type { CheckReport } from '../preflight/report.js';
import { ConfigError } from '../util/errors.js';

export interface CheckCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  pg: PgConnectionOptions;
  json?: boolean;
}

export async function checkCommand(opts: CheckCommandOptions): Promise<void> {
  let report;
  try {
    report = await runCheck(opts);
  } catch (err) {
    if (opts.json && err instanceof ConfigError) {
      process.stdout.write(JSON.stringify({ ok: false, issues: err.issues }, null, 2) + '\n');
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderTable(report));
  // A failed preflight is a problem with the user's setup, not a pgark failure: exit 2 like bad input.
  process.exitCode = report.ok ? 0 : 2;
}

/** The report as a fixed-width table. */
export function renderTable(report: CheckReport): string {
  const header = { check: 'CHECK', status: 'STATUS', detail: 'DETAIL' };
  const w = Math.max(header.check.length, ...report.rows.map((r) => r.check.length));
  const line = (c: string, s: string, d: string) => `${c.padEnd(w)}  ${s.padEnd(6)}  ${d}`;
  const out = [line(header.check, header.status, header.detail)];
  for (const r of report.rows) {
    out.push(line(r.check, r.status.toUpperCase(), r.detail));
    if (r.hint && r.status !== 'ok') out.push(line('', '', `hint: ${r.hint}`));
  }
  out.push(report.ok ? `OK: cluster ${report.cluster} is ready for pgark` : 'FAILED: fix the rows marked FAIL and run pgark check again');
  return out.join('\n') + '\n';
}
