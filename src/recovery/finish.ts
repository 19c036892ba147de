/**
 * `pgark restore --finish-recovery`: what recovery_end_command runs when PostgreSQL ends the
 * recovery (at the target, before it accepts writes). It drops the recovery-only settings, turns
 * archive_command from 'false' into the recovered cluster's own `pgark wal-archive` (its new
 * serverName), removes the generated recovery-source manifest, and asks the postmaster to reload.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { archiveCommand, type ManifestRef } from './pgark-command.js';
import { GENERATED_SOURCE_MANIFEST } from '../util/cnpg.js';
import { finishRecoveryConfig } from './settings.js';

export interface FinishOptions {
  pgdata: string;
  ref: ManifestRef;
  /** --cluster for wal-archive when the manifests hold several Clusters. */
  cluster?: string;
  /** False when the Cluster has no backup.barmanObjectStore: archive_command stays off. */
  archives: boolean;
}

export function finishRecovery(opts: FinishOptions): void {
  const pgdata = resolve(opts.pgdata);
  finishRecoveryConfig(pgdata, opts.archives ? archiveCommand(opts.ref, opts.cluster) : undefined);
  rmSync(join(pgdata, GENERATED_SOURCE_MANIFEST), { force: true });
  const pidFile = join(pgdata, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGHUP');
  }
}
