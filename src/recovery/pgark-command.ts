/**
 * Command lines PostgreSQL runs on pgark's behalf (restore_command, archive_command,
 * recovery_end_command): the pgark launcher (bin/pgark, which answers archive_command for
 * segments the WAL daemon already stored without starting Node) with PGARK_NODE naming this
 * Node, the manifest files as absolute paths, then the subcommand. PostgreSQL hands them to
 * /bin/sh, so every argument is single-quoted for the shell.
 */
import { basename, resolve, join } from 'node:path';
import { PACKAGE_ROOT } from '../util/package.js';
import type { ConfigRef } from '../wal/protocol.js';
import { restoreSpoolDir, walRuntime } from '../wal/runtime.js';

export interface ManifestRef {
  files: string[];
  secretsDir?: string;
}

export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function render(sub: string, ref: ManifestRef, extra: string[], placeholders: string[], env: string[] = []): string {
  const config = [ref.files.flatMap((f) => ['-f', resolve(f)]), ref.secretsDir ? ['--secrets-dir', resolve(ref.secretsDir)] : []].flat();
  const words = [join(PACKAGE_ROOT, 'bin', 'pgark'), sub, ...config, ...extra].map(shellQuote);
  return [`PGARK_NODE=${shellQuote(process.execPath)}`, ...env, ...words, ...placeholders].join(' ');
}

function clusterArgs(cluster: string | undefined): string[] {
  return cluster ? ['--cluster', cluster] : [];
}

/**
 * restore_command: pgark wal-restore against the recovery source (an externalCluster, or a
 * Cluster's own store). PGARK_WAL_RESTORE_SPOOL names the daemon's spool for exactly these
 * arguments (the id wal-restore itself would compute), so bin/pgark can serve prefetched segments.
 */
export function restoreCommand(ref: ManifestRef, opts: { source?: string; cluster?: string }): string {
  // The id depends on the arguments alone, not on where the runtime directory is.
  const spool = basename(restoreSpoolDir(walRuntime('/'), restoreConfigRef(ref, opts)));
  return render('wal-restore', ref, [...clusterArgs(opts.cluster), ...(opts.source ? ['--source', opts.source] : [])], ['%f', '%p'], [`PGARK_WAL_RESTORE_SPOOL=${spool}`]);
}

/** The ConfigRef `pgark wal-restore` builds from restoreCommand's arguments (client.ts): the daemon's key for its target and spool. */
export function restoreConfigRef(ref: ManifestRef, opts: { source?: string; cluster?: string }): ConfigRef {
  return {
    files: ref.files.map((f) => resolve(f)),
    ...(ref.secretsDir && { secretsDir: resolve(ref.secretsDir) }),
    ...(opts.cluster && { cluster: opts.cluster }),
    ...(opts.source && { source: opts.source }),
  };
}

/** archive_command of the recovered cluster: its own backup.barmanObjectStore (and so its new serverName). */
export function archiveCommand(ref: ManifestRef, cluster: string | undefined): string {
  return render('wal-archive', ref, clusterArgs(cluster), ['%p']);
}

/**
 * recovery_end_command: switches archive_command from 'false' to pgark wal-archive once recovery
 * ends (`archives`: the cluster has a store of its own); with `archiveEnd`, first fails the
 * recovery if replay stopped before that segment. With --archive-after the launcher runs it
 * without the CLI or the manifests (cli/finish-recovery.ts).
 */
export function finishCommand(ref: ManifestRef, pgdata: string, cluster: string | undefined, archives: boolean, archiveEnd?: string): string {
  const extra = ['--finish-recovery', '--pgdata', resolve(pgdata), '--archive-after', archives ? 'on' : 'off', ...(archiveEnd ? ['--archive-end', archiveEnd] : [])];
  return render('restore', ref, [...clusterArgs(cluster), ...extra], []);
}
