/**
 * `pgark drill`: one restore drill with its report (text or --json) and exit status, or
 * `--history`, the drills stored in the Cluster's object store. SIGINT/SIGTERM abort the drill,
 * which then stops its server, removes its scratch directory and still stores its report.
 */
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { loadDrillChecks } from '../config/drill-checks.js';
import { drillHistory, type DrillReport } from '../drill/report.js';
import { runDrill } from '../drill/run.js';
import { openObjectStore } from '../storage/open.js';
import { PgarkError } from '../util/errors.js';
import { formatBytes, formatDuration } from '../util/format.js';

export interface DrillCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  target: string;
  backup?: string;
  checks?: string;
  keep: boolean;
  scratch?: string;
  pguser?: string;
  jobs?: number;
  json: boolean;
}

export async function drillCommand(opts: DrillCommandOptions): Promise<void> {
  const checks = opts.checks ? loadDrillChecks(opts.checks) : [];
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { report, reportKey, storeError } = await runDrill({ ...opts, checks, signal: abort.signal });
    process.stdout.write(opts.json ? `${JSON.stringify({ ...report, reportKey: reportKey ?? null, storeError: storeError ?? null }, null, 2)}\n` : reportText(report, reportKey, storeError));
    if (!report.ok) {
      const f = report.failure!;
      throw new PgarkError(`drill failed at step ${f.step}: ${f.message}${f.fatal ? `\n  server log: ${f.fatal}` : ''}`, 1);
    }
    if (storeError) throw new PgarkError(`the drill passed, but its report could not be stored: ${storeError}`, 1);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function reportText(r: DrillReport, key: string | undefined, storeError: string | undefined): string {
  const lines = [
    `Drill:        ${r.id} of Cluster "${r.cluster}" (server ${r.serverName}): ${r.ok ? 'PASSED' : `FAILED at ${r.failure!.step}`}`,
    `Target:       ${r.target.requested}${r.target.reason ? ` -> LSN ${r.target.lsn}` : ''}${r.target.description ? ` (${r.target.description})` : ''}`,
    ...(r.target.reason ? [`              ${r.target.reason}`] : []),
    `Backup:       ${r.backup ? `${r.backup.id}${r.backup.name ? ` (${r.backup.name})` : ''}, ${formatBytes(r.backup.bytes ?? 0)}` : 'none restored'}`,
    `RTO:          ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}${s.ok ? '' : ' (failed)'}`).join(', ')}; total ${formatDuration(r.rto.total)}`,
    `Reached:      ${r.recoveryPoint ? `${r.recoveryPoint.time ?? 'no transaction replayed'} at ${r.recoveryPoint.lsn ?? '?'}, timeline ${r.recoveryPoint.timeline ?? '?'}` : 'nothing'}`,
    `RPO now:      ${r.rpo.ageSeconds === null ? 'no archived WAL' : `${formatDuration(r.rpo.ageSeconds)} (newest WAL ${r.rpo.newestWal}, stored ${r.rpo.newestWalStored})`}`,
    `Window:       ${r.recoverableWindow.from ?? '?'} .. ${r.recoverableWindow.to ?? '?'}; ${r.wal.gapSegments} WAL segment(s) missing in gaps`,
    `Transferred:  ${formatBytes(r.bytes.downloaded)} downloaded${r.bytes.downloadBytesPerSecond ? ` at ${formatBytes(r.bytes.downloadBytesPerSecond)}/s` : ''}, ${r.bytes.walSegmentsReplayed} WAL segment(s) fetched${r.bytes.replayBytesPerSecond ? `, replayed at ${formatBytes(r.bytes.replayBytesPerSecond)}/s` : ''}`,
    ...r.checks.map((c) => `Check:        ${c.name}${c.database ? ` (${c.database})` : ''}: ${c.status}: ${c.detail}`),
  ];
  if (r.failure) lines.push(`Failure:      ${r.failure.message}`, ...(r.failure.fatal ? [`Server log:   ${r.failure.fatal}`] : []));
  lines.push(`Scratch:      ${r.scratch.kept ? `kept in ${r.scratch.dir}` : 'removed'}`);
  lines.push(`Report:       ${key ?? `NOT stored: ${storeError}`}`);
  return `${lines.join('\n')}\n`;
}

export async function drillHistoryCommand(opts: { files: string[]; secretsDir?: string; cluster?: string; json: boolean }): Promise<void> {
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = findCluster(ctx.manifests, opts.cluster);
  const resolved = await clusterObjectStore(ctx, cluster);
  const store = await openObjectStore(resolved);
  try {
    const entries = await drillHistory(store, resolved.serverName);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
      return;
    }
    if (!entries.length) {
      process.stdout.write(`no drills stored for server "${resolved.serverName}"\n`);
      return;
    }
    for (const e of entries) {
      const what = e.unreadable
        ? `unreadable: ${e.unreadable}`
        : `${e.ok ? 'passed' : `FAILED at ${e.failedStep}`}  RTO ${formatDuration(e.rtoSeconds ?? 0)}  reached ${e.recoveryPoint ?? '-'}  target ${e.target || '-'}`;
      process.stdout.write(`${e.id}  ${what}\n`);
    }
  } finally {
    await store.close();
  }
}
