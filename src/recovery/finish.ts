/**
 * `pgark restore --finish-recovery`: what recovery_end_command runs when PostgreSQL ends the
 * recovery (at the target, before it accepts writes). It first checks that replay got as far as
 * the archive reached, then drops the recovery-only settings, turns archive_command from 'false'
 * into the recovered cluster's own `pgark wal-archive` (its new serverName), removes the generated
 * recovery-source manifest, and asks the postmaster to reload.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { archiveCommand, type ManifestRef } from './pgark-command.js';
import { GENERATED_SOURCE_MANIFEST } from '../util/cnpg.js';
import { PgarkError } from '../util/errors.js';
import { parseControlFile } from '../pg/control-file.js';
import { parseHistoryFile } from '../pg/history.js';
import { formatLsn } from '../pg/lsn.js';
import { parseSegmentName, segmentStartLsn, walSegmentName } from '../pg/wal-names.js';
import { ABORT_RECOVERY_EXIT, ABORT_RECOVERY_MARK } from '../wal/restore-exit.js';
import { finishRecoveryConfig } from './settings.js';

export interface FinishOptions {
  pgdata: string;
  ref: ManifestRef;
  /** --cluster for wal-archive when the manifests hold several Clusters. */
  cluster?: string;
  /** False when the Cluster has no backup.barmanObjectStore: archive_command stays off. */
  archives: boolean;
  /** With no recovery target: the last segment the archive held contiguously from the backup when the restore started. */
  archiveEnd?: string;
}

export function finishRecovery(opts: FinishOptions): void {
  const pgdata = resolve(opts.pgdata);
  const short = opts.archiveEnd && replayEndProblem(pgdata, opts.archiveEnd);
  if (short) {
    throw new PgarkError(
      `${ABORT_RECOVERY_MARK} ${short}`,
      ABORT_RECOVERY_EXIT,
      'PostgreSQL was stopped before promoting on partial data; the data directory is left as it is for inspection',
    );
  }
  finishRecoveryConfig(pgdata, opts.archives ? archiveCommand(opts.ref, opts.cluster) : undefined);
  rmSync(join(pgdata, GENERATED_SOURCE_MANIFEST), { force: true });
  const pidFile = join(pgdata, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGHUP');
  }
}

/**
 * With no recovery target PostgreSQL ends the recovery wherever the WAL it can use ends: at a
 * segment it rejected (a record whose CRC fails) just as at the true end of the archive. The new
 * timeline's history file, written just before recovery_end_command runs, records where replay
 * ended; this says what is wrong when that is before `archiveEnd`. `archiveEnd` comes from the
 * listing made before the server started: segments a live cluster archives meanwhile can only let
 * replay go further, never make this check fail.
 */
export function replayEndProblem(pgdata: string, archiveEnd: string): string | undefined {
  const walDir = join(pgdata, 'pg_wal');
  const newest = readdirSync(walDir)
    .filter((f) => /^[0-9A-F]{8}\.history$/.test(f))
    .sort()
    .at(-1);
  const entry = newest && parseHistoryFile(readFileSync(join(walDir, newest), 'utf8'), join(walDir, newest)).at(-1);
  if (!entry) return `cannot tell where WAL replay ended: ${walDir} holds no timeline history file of the new timeline`;
  const segSize = parseControlFile(readFileSync(join(pgdata, 'global', 'pg_control'))).walSegmentSize;
  const end = entry.switchpoint;
  if (end > segmentStartLsn(parseSegmentName(archiveEnd, segSize), segSize)) return undefined;
  const fault = walSegmentName(entry.timeline, end, segSize);
  return `WAL replay ended at ${formatLsn(end)} on timeline ${entry.timeline}, at segment ${fault}, but the archive held WAL through ${archiveEnd} when the restore started: PostgreSQL could not use ${fault} (the server log says why)`;
}
