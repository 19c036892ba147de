/**
 * barman-cloud-wal-archive as pgark: stores one WAL file through pgark's archiver (src/wal/*) in
 * barman's layout, by the drop-in's resident daemon when the WAL path is argv's last element (the
 * form CloudNativePG builds, which bin/pgark's sh fast path can answer), else in this process.
 * Unlike barman's unconditional overwrite, an already stored name is compared: the same bytes
 * succeed, other bytes fail with exit 1 (contract §2.1; exit classes §1.6).
 */
import { basename } from 'node:path';
import { resolveBarmanStore } from '../../config/barman-env.js';
import type { CodecName } from '../../codec/types.js';
import { classifyWalName } from '../../pg/wal-names.js';
import { setting } from '../../util/options.js';
import { archiveReply } from '../../wal/client.js';
import type { BarmanRef } from '../../wal/protocol.js';
import { connectivityOnly } from './connectivity.js';
import { daemonInstance, EXIT, exitForError, replyMessage, storeArgs, type BarmanInvocation } from './common.js';

export async function walArchive(inv: BarmanInvocation): Promise<number> {
  const { values, log } = inv;
  const store = storeArgs(values, 'destination_url');
  if (values.test) return connectivityOnly(store, log);
  const walPath = typeof values.wal_path === 'string' ? values.wal_path : undefined;
  if (!walPath) {
    log.error('Barman cloud WAL archiver exception: the following arguments are required: wal_path');
    return EXIT.general;
  }
  if (!classifyWalName(basename(walPath))) {
    log.error(`${walPath} is an invalid name for a WAL file`);
    return EXIT.cli;
  }
  try {
    // Here, not in the daemon: a store pgark cannot use is the caller's error (exit 3), said at once.
    resolveBarmanStore(store);
  } catch (err) {
    log.error(`Barman cloud WAL archiver exception: ${(err as Error).message}`);
    return exitForError(err);
  }
  const ref: BarmanRef = {
    store,
    compression: (values.compression as CodecName | undefined) ?? 'none',
    encryption: values.encryption as BarmanRef['encryption'],
    tags: inv.tags,
    historyTags: inv.historyTags,
    maxParallel: setting('barmanWalParallel'),
  };
  // The daemon is keyed by argv less its last element (bin/pgark's key), so only that form may use it.
  const walLast = inv.argv[inv.argv.length - 1] === walPath;
  const reply = await archiveReply({
    config: { files: [], barman: ref },
    noDaemon: !walLast || setting('archiveNoDaemon') === true,
    positional: [walPath],
    instance: daemonInstance(inv.argv.slice(0, -1)),
  });
  if (reply.ok) return EXIT.ok;
  log.error(`Barman cloud WAL archiver exception: ${replyMessage(reply)}`);
  if (reply.storageKind === 'unreachable') return EXIT.network;
  if (reply.conflict) return EXIT.operation;
  if (reply.exitCode === 2 || reply.exitCode === 3) return EXIT.cli;
  return EXIT.general;
}
