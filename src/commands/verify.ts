/**
 * `pgark verify`: reads the chosen backups (and with --wal their WAL chain) back from the Cluster's
 * store, prints what was checked and every bad object, and exits 0 only when everything verified,
 * 1 when something is bad (2 for bad flags or manifests, as every command).
 */
import { catalogWriteOptions } from '../catalog/catalog.js';
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { ProgressDisplay } from '../io/progress.js';
import { openObjectStore } from '../storage/open.js';
import { UserError } from '../util/errors.js';
import { formatBytes } from '../util/format.js';
import { flagValue } from '../util/options.js';
import type { VerifyResult } from '../verify/report.js';
import { runVerify } from '../verify/run.js';

export interface VerifyCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  backup?: string;
  wal: boolean;
  sinceLast: boolean;
  jobs?: string;
  progress: boolean;
  json: boolean;
}

const DEFAULT_JOBS = 4;

/** Returns the exit code: 0 when everything verified, 1 otherwise. */
export async function verifyCommand(opts: VerifyCommandOptions): Promise<number> {
  if (opts.sinceLast && opts.backup !== undefined) {
    throw new UserError('--since-last and --backup choose backups in two ways', 'use --since-last to verify what is new since the last good run, or --backup to name backups');
  }
  const jobsFlag = flagValue('verifyJobs', opts.jobs);
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = findCluster(ctx.manifests, opts.cluster);
  const resolved = await clusterObjectStore(ctx, cluster);
  const store = await openObjectStore(resolved);
  try {
    const result = await runVerify({
      store,
      serverName: resolved.serverName,
      write: catalogWriteOptions(resolved.config),
      backup: opts.backup,
      wal: opts.wal,
      sinceLast: opts.sinceLast,
      jobs: jobsFlag ?? resolved.config.data?.jobs ?? DEFAULT_JOBS,
      age: resolved.age,
      progress: (total, estimate) => {
        const display = new ProgressDisplay({ label: 'verifying', total, estimate, quiet: !opts.progress });
        return { counter: () => display.filter(), stop: () => display.stop() };
      },
    });
    process.stdout.write(opts.json ? JSON.stringify(result, null, 2) + '\n' : formatVerifyResult(result));
    return result.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

/** The human report: one line per backup and for the WAL, then every problem with its object. */
export function formatVerifyResult(r: VerifyResult): string {
  const lines = [`verify of server "${r.serverName}" in ${r.store}: ${r.ok ? 'OK' : 'FAILED'} (${r.objectsRead} objects, ${formatBytes(r.bytesRead)} read)`];
  if (r.since) lines.push(`  since the last good run ${r.since.key} (backups after ${r.since.newestBackupId ?? 'none'})`);
  if (r.backups.length === 0) lines.push('  no backup chosen');
  for (const b of r.backups) {
    const manifest = b.manifestFiles === null ? 'no backup_manifest' : `${b.manifestFiles} files match backup_manifest`;
    const digests = b.objects.every((o) => o.sha256 === 'match') && b.objects.length ? ', SHA-256 of every object matches' : '';
    lines.push(`  backup ${b.backupId}${b.backupName ? ` (${b.backupName})` : ''} [${b.writer}]: ${b.ok ? 'OK' : 'BAD'}, ${b.objects.length} object(s), ${manifest}${digests}`);
    for (const n of b.notChecked) lines.push(`    not checked: ${n}`);
  }
  if (r.wal) {
    const w = r.wal;
    lines.push(
      `  WAL: ${w.ok ? 'OK' : 'BAD'}, ${w.segmentsInChain} segment(s) ${w.firstSegment ?? '-'} .. ${w.lastSegment ?? '-'}, ${w.segmentsRead} read, timelines ${w.timelines.map((t) => t.timeline).join(' -> ') || '-'}`,
    );
    for (const g of w.gaps) lines.push(`    gap: ${g.from} .. ${g.to} (${g.missing} missing, WAL ${g.fromLsn} .. ${g.toLsn})`);
    for (const win of w.windows) {
      lines.push(
        win.fromLsn === null
          ? `    backup ${win.backupId}: not recoverable (${win.endsAt === 'begin-missing' ? 'its first segment is missing or bad' : 'WAL before its end is missing or bad'})`
          : `    backup ${win.backupId}: recoverable from ${win.fromLsn}${win.fromTime ? ` (${win.fromTime})` : ''} to ${win.toLsn} (last segment ${win.lastSegment}, then ${win.endsAt})`,
      );
    }
    for (const n of w.notChecked) lines.push(`    not checked: ${n}`);
  }
  if (r.problems.length) {
    lines.push('problems:');
    for (const p of r.problems) lines.push(`  ${p.key}: ${p.what}`);
  }
  lines.push(r.storedAt ? `result stored at ${r.storedAt}` : `result NOT stored: ${r.storeError}`);
  return lines.join('\n') + '\n';
}
