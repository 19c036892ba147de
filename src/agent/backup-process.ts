/**
 * Runs one backup in a child process (backup-child.ts) and reports what happens to it: the
 * process id at once, the barman backup id as soon as the backup announces it (its
 * `backup-start` log event), and the outcome. The child's JSON log lines are passed on to the
 * agent's log, tagged with the backup name.
 *
 * Aborting (AbortSignal) sends SIGTERM, then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { logger } from '../util/log.js';
import { LEAN_MALLOC_ENV, LEAN_NODE_FLAGS } from '../util/gc.js';
import { setting } from '../util/options.js';
import type { BackupJob, BackupOutcome } from './backup-protocol.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'backup-child.js');
const KILL_GRACE_MS = 10_000;

export interface BackupProcessEvents {
  onSpawn?(pid: number): void;
  onBackupId?(backupId: string): void;
}

/** Passes one child log line on: JSON lines at or above the agent's level, anything else as text. */
function relay(line: string, backup: string, onBackupId: (id: string) => void): void {
  const log = logger();
  let record: { level?: number; msg?: string; event?: string; backupId?: string } | undefined;
  try {
    record = JSON.parse(line) as typeof record;
  } catch {
    record = undefined;
  }
  if (!record || typeof record !== 'object') {
    // Not pino's: a crash trace or a runtime warning.
    if (line.trim() !== '') log.warn({ backup, output: line }, 'backup process output');
    return;
  }
  if (record.event === 'backup-start' && typeof record.backupId === 'string') onBackupId(record.backupId);
  const level = typeof record.level === 'number' ? record.level : 30;
  if (level < log.levelVal) return;
  const { level: _l, time: _t, msg, ...fields } = record as Record<string, unknown>;
  const method = level >= 50 ? 'error' : level >= 40 ? 'warn' : level >= 30 ? 'info' : 'debug';
  log[method]({ backup, ...fields }, String(msg ?? ''));
}

export function runBackupProcess(job: BackupJob, signal: AbortSignal, events: BackupProcessEvents = {}): Promise<BackupOutcome> {
  return new Promise((resolve) => {
    // The lean flags and malloc setting of the WAL daemon (util/gc.ts): a backup streams for as long as the database takes.
    const child = spawn(process.execPath, [...LEAN_NODE_FLAGS, CHILD], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // The child's backup-start event carries the backup id; it is logged at info.
      env: { ...LEAN_MALLOC_ENV, ...process.env, PGARK_LOG_LEVEL: logger().levelVal > 30 ? 'info' : setting('logLevel') },
    });
    let outcome: BackupOutcome | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const abort = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    if (child.pid !== undefined) events.onSpawn?.(child.pid);
    createInterface({ input: child.stderr! }).on('line', (line) => relay(line, job.name, (id) => events.onBackupId?.(id)));
    child.on('message', (m: BackupOutcome) => (outcome = m));
    child.on('error', (err) => {
      outcome ??= { ok: false, message: `could not start the backup process: ${err.message}`, walArchiving: false };
    });
    child.on('close', (code, sig) => {
      signal.removeEventListener('abort', abort);
      if (killTimer) clearTimeout(killTimer);
      if (signal.aborted && !outcome?.ok) {
        resolve({ ok: false, message: `backup aborted: ${String(signal.reason ?? 'the agent is stopping')}`, walArchiving: false });
      } else {
        resolve(outcome ?? { ok: false, message: `the backup process exited without a result (${sig ? `signal ${sig}` : `exit code ${code}`})`, walArchiving: false });
      }
    });
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
    child.send(job);
  });
}
