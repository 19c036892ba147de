/** `pgark logical backup | list | restore`: runs the logical modules and prints what they report. */
import type { LocationFlags } from '../logical/backup-env.js';
import { formatAge, formatBytes } from '../util/format.js';

export async function logicalBackupCommand(opts: Record<string, unknown>): Promise<void> {
  const { readBackupSettings } = await import('../logical/backup-env.js');
  const { runLogicalBackup } = await import('../logical/backup.js');
  const report = await runLogicalBackup(readBackupSettings(opts));
  if (opts.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return;
  }
  for (const d of report.dumps) process.stdout.write(`${d.key}  ${formatBytes(d.size)}  ${d.seconds.toFixed(1)} s  sha256 ${d.sha256}\n`);
  if (report.deleted.length) process.stdout.write(`retention deleted ${report.deleted.length} objects\n`);
}

export async function logicalListCommand(flags: LocationFlags, json: boolean): Promise<void> {
  const { listLogical } = await import('../logical/list.js');
  const { folder, displayUrl, dumps } = await listLogical(flags);
  const now = Date.now();
  if (json) {
    const rows = dumps.map((d) => ({
      key: d.key,
      kind: d.kind,
      database: d.database ?? null,
      format: d.format,
      codec: d.codec,
      size: d.size,
      takenAt: d.takenAt.toISOString(),
      ageSeconds: Math.floor((now - d.takenAt.getTime()) / 1000),
      complete: d.metaKey !== undefined,
    }));
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  if (dumps.length === 0) {
    process.stdout.write(`no logical dumps under ${folder} in ${displayUrl}\n`);
    return;
  }
  for (const d of dumps) {
    const status = d.metaKey ? '' : d.database === undefined ? '  (operator dump: no checksum)' : '  (incomplete: no sidecar)';
    process.stdout.write(`${d.takenAt.toISOString()}  ${formatAge(now - d.takenAt.getTime()).padStart(7)} old  ${formatBytes(d.size).padStart(10)}  ${d.key}${status}\n`);
  }
}

/** The restore tool (bin/restore.sh's contract); a prompt closed with Ctrl-C ends as "cancelled", exit 130. */
export async function logicalRestoreCommand(): Promise<void> {
  const { runRestore } = await import('../logical/restore-run.js');
  try {
    await runRestore();
  } catch (err) {
    if ((err as Error)?.name !== 'ExitPromptError') throw err;
    process.stderr.write('restore cancelled; nothing was changed\n');
    process.exitCode = 130;
  }
}
