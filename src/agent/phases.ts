/**
 * The phase of a backup the agent runs, with CNPG's names (BackupPhase, cnpg-barman-cloud.md
 * section 1.3). Phases only move forward: a stuck or regressing Backup phase is one of the most
 * reported CNPG problems (peers.md section 3 item 4), so every change goes through advancePhase().
 *
 *   pending -> running -> walArchivingFailing -> completed | failed
 *
 * Any phase may jump straight to a terminal one; completed and failed never change again.
 */

export type BackupPhase = 'pending' | 'running' | 'walArchivingFailing' | 'completed' | 'failed';

export const BACKUP_PHASES: readonly BackupPhase[] = ['pending', 'running', 'walArchivingFailing', 'completed', 'failed'];

const RANK: Record<BackupPhase, number> = { pending: 0, running: 1, walArchivingFailing: 2, completed: 3, failed: 3 };

export function isTerminal(phase: BackupPhase): boolean {
  return phase === 'completed' || phase === 'failed';
}

/** Whether a backup in phase `from` may move to `to` (staying put counts as allowed). */
export function canAdvance(from: BackupPhase, to: BackupPhase): boolean {
  if (from === to) return true;
  if (isTerminal(from)) return false;
  return RANK[to] >= RANK[from];
}

/** The phase after a requested change: `to` when allowed, otherwise `from` unchanged. */
export function advancePhase(from: BackupPhase, to: BackupPhase): BackupPhase {
  return canAdvance(from, to) ? to : from;
}
