/**
 * The process that takes one scheduled backup for the agent: `node backup-child.js`, job over IPC.
 *
 * Why a child process and not a call in the agent: the agent must be able to stop a backup at
 * once (SIGTERM, shutdown) without leaving a DONE-looking backup, and takeBackup() has no abort
 * hook. Ending the process ends the backup session (PostgreSQL aborts the backup with it) before
 * backup.info, written last, could exist. It also keeps each backup's memory out of the
 * long-running agent.
 *
 * The child exits when the IPC channel closes, i.e. when the agent dies (even by kill -9), so a
 * backup never outlives the agent that would have to report it.
 */
import type { BackupJob, BackupOutcome } from './backup-protocol.js';
import type { BackupRotation } from '../config/backup-rotation.js';
import type { ResolvedObjectStore } from '../config/types.js';

function send(outcome: BackupOutcome): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(outcome, () => resolve());
  });
}

async function run(job: BackupJob): Promise<BackupOutcome> {
  const { loadContext, findCluster } = await import('../config/index.js');
  const { backupRequest } = await import('../backup/request.js');
  const { takeBackupWithin } = await import('../backup/run.js');
  const { backupMemory } = await import('../config/memory.js');
  const { WalArchivingError } = await import('../backup/wait-wal.js');
  const { backupRotation } = await import('../config/backup-rotation.js');
  try {
    const ctx = await loadContext({ files: job.files, secretsDir: job.secretsDir });
    const cluster = findCluster(ctx.manifests, job.cluster);
    const req = await backupRequest(ctx, cluster, job.pg, { name: job.name, progress: false });
    const sb = ctx.manifests.scheduledBackups.find((s) => s.metadata.name === job.scheduledBackup);
    if (sb) req.type = await typeOfSlot(backupRotation(sb), req.store);
    const { record } = await takeBackupWithin(backupMemory(), req);
    return { ok: true, backupId: record.backupId, storedBytes: record.storedBytes ?? 0 };
  } catch (err) {
    const e = err as Error & { hint?: string };
    const message = `${e?.message ?? String(err)}${e?.hint ? ` (hint: ${e.hint})` : ''}`;
    return { ok: false, message, walArchiving: err instanceof WalArchivingError };
  }
}

/** Reads the full backups only when the rotation can choose incremental: a full-only schedule costs no listing. */
async function typeOfSlot(rotation: BackupRotation, resolved: ResolvedObjectStore): Promise<'full' | 'incremental'> {
  if (rotation.type === 'full') return 'full';
  const { openObjectStore } = await import('../storage/open.js');
  const { listBackups } = await import('../catalog/catalog.js');
  const { scheduledBackupType } = await import('./backup-type.js');
  const store = await openObjectStore(resolved);
  try {
    return scheduledBackupType(rotation, (await listBackups(store, resolved.serverName)).backups, new Date());
  } finally {
    await store.close();
  }
}

process.on('disconnect', () => process.exit(1));
process.once('message', (job: BackupJob) => {
  void run(job)
    .then(send)
    .finally(() => process.exit(0));
});
