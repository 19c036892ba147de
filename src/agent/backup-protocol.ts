/** Messages between the agent and the backup process it starts (backup-child.ts), over Node's IPC channel. */
import type { PgConnectionOptions } from '../pg/connect.js';

/** What the child needs to take one backup; the child loads the manifests itself. */
export interface BackupJob {
  files: string[];
  secretsDir?: string;
  cluster: string;
  name: string;
  /** The ScheduledBackup whose slot this is: its annotations choose full or incremental. */
  scheduledBackup: string;
  pg: PgConnectionOptions;
}

export type BackupOutcome =
  | { ok: true; backupId: string; storedBytes: number }
  | { ok: false; message: string; walArchiving: boolean };
