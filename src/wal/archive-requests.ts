/**
 * Archive requests bin/pgark leaves as files, so that archive_command needs no Node start when the
 * WAL daemon has not stored the segment ahead. At the pace of a segment now and then (a quiet
 * server, archive_timeout, a backup's switch) look-ahead has nothing stored yet, and every call
 * started Node only to ask the daemon over its socket: 0.15-0.5 s each, 588 times in a run of the
 * test suite.
 *
 * bin/pgark writes `archive-spool/<segment>.request` in the daemon's private runtime directory, a
 * line each: its working directory, PGARK_CONFIG, its argv, and "." last (the file is complete only
 * then; sh has no atomic write without a fork). The daemon watches the spool, reads the command
 * line as the Node client would (client.ts parseWalArgs, in the caller's directory), archives the
 * segment as if PostgreSQL had asked through the socket, keeps its marker (the answer the launcher
 * reads) and removes the request when done, stored or not. A request that does not parse, names a
 * file outside this daemon's pg_wal or fails is just removed: bin/pgark then starts Node, which
 * asks again and reports the error. Only pgark's own daemon takes requests (a barman-cloud
 * drop-in's store is named by its caller's environment, which a file must not hold), and only once
 * it says so with `archive-spool/.requests`, written after the watch is up.
 *
 * PostgreSQL still decides what is archived: a request exists only because it ran archive_command
 * for that segment.
 */
import { rmSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { logger } from '../util/log.js';
import { parseWalArgs } from './client.js';
import type { ConfigRef } from './protocol.js';
import { REQUEST_SUFFIX, REQUESTS_TAKEN_FILE, type WalRuntime } from './runtime.js';

const END_LINE = '.';

/** The segment and configuration a complete request names; undefined while bin/pgark is still writing it. */
export function readArchiveRequest(text: string): { path: string; config: ConfigRef } | undefined {
  const lines = text.split('\n');
  // printf '%s\n' ends the file with a newline: the last element is empty.
  if (lines.length < 4 || lines.at(-1) !== '' || lines.at(-2) !== END_LINE) return undefined;
  const [cwd, configFile, command, ...args] = lines.slice(0, -2);
  if (command !== 'wal-archive' || !cwd.startsWith('/')) throw new Error('not a wal-archive command line');
  const opts = parseWalArgs('wal-archive', args, { cwd, configFile: configFile || undefined });
  if (opts.noDaemon || opts.pgdata) throw new Error('--no-daemon and --pgdata are for Node');
  return { path: resolve(cwd, opts.positional[0]), config: opts.config };
}

/** Takes the requests bin/pgark leaves in `rt`'s archive spool; `archive` stores one (its marker kept). */
export async function takeArchiveRequests(
  rt: WalRuntime,
  walDir: string,
  archive: (path: string, config: ConfigRef) => Promise<unknown>,
): Promise<{ close(): void }> {
  // bin/pgark spells pg_wal from its working directory, which PostgreSQL resolved: compare real paths.
  const realWalDir = await realpath(walDir).catch(() => walDir);
  const taking = new Set<string>();
  /** Requests written to again while being read: read once more, or a read that came before the write's end would be the last. */
  const writtenMeanwhile = new Set<string>();

  async function take(file: string): Promise<void> {
    if (taking.has(file)) {
      writtenMeanwhile.add(file);
      return;
    }
    taking.add(file);
    const at = join(rt.archiveSpool, file);
    try {
      const text = await readFile(at, 'utf8').catch(() => undefined);
      let request;
      try {
        request = text === undefined ? undefined : readArchiveRequest(text);
        if (request && (await realpath(dirname(request.path)).catch(() => undefined)) !== realWalDir) throw new Error(`${request.path} is not in ${walDir}`);
      } catch (err) {
        logger().warn({ request: file, err: (err as Error).message }, 'WAL archive request not taken; bin/pgark asks through Node');
        await unlink(at).catch(() => undefined);
        return;
      }
      // Not complete yet: the next write's event brings it back.
      if (!request) return;
      await archive(join(walDir, basename(request.path)), request.config).catch(() => undefined);
      await unlink(at).catch(() => undefined);
    } finally {
      taking.delete(file);
      if (writtenMeanwhile.delete(file)) void take(file);
    }
  }

  const onEvent = (_event: string, file: string | Buffer | null) => {
    const name = file?.toString();
    if (name?.endsWith(REQUEST_SUFFIX)) void take(name);
  };
  let watcher: FSWatcher;
  try {
    watcher = watch(rt.archiveSpool, { persistent: false }, onEvent);
  } catch (err) {
    logger().warn({ err: (err as Error).message }, 'not watching the archive spool: archive_command starts Node for each segment the daemon has not stored ahead');
    return { close: () => undefined };
  }
  watcher.on('error', (err) => logger().warn({ err: err.message }, 'archive spool watch failed'));
  // Requests left before the watch began.
  for (const f of await readdir(rt.archiveSpool).catch(() => [] as string[])) onEvent('rename', f);
  const taken = join(rt.archiveSpool, REQUESTS_TAKEN_FILE);
  await writeFile(taken, '');
  return {
    close: () => {
      watcher.close();
      rmSync(taken, { force: true });
    },
  };
}
